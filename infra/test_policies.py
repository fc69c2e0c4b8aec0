"""Tests of the offline infrastructure checks (`python3 -m unittest discover -s infra`, run by
`make lint-infra`): each check fails on the defect it exists for, and passes on the real template."""

import json
import unittest

import policies

ROLE_WITH_PREFIX_CONDITION = """
Resources:
  Bucket: {Type: AWS::S3::Bucket}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Sid: ListUnfinishedUploads
              Effect: Allow
              Action: [s3:ListBucketMultipartUploads]
              Resource: !GetAtt Bucket.Arn
              Condition:
                StringLike:
                  s3:prefix: "amazon/*"
"""

ALARM_ON_MANAGED_KEY = """
Resources:
  Machine: {Type: AWS::Serverless::StateMachine}
  Topic:
    Type: AWS::SNS::Topic
    Properties: {KmsMasterKeyId: alias/aws/sns}
  Failed:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/States
      MetricName: ExecutionsFailed
      Dimensions: [{Name: StateMachineArn, Value: !Ref Machine}]
      AlarmActions: [!Ref Topic]
"""

ALARM_ON_UNEMITTED_METRIC = """
Resources:
  Fn: {Type: AWS::Serverless::Function}
  Topic: {Type: AWS::SNS::Topic}
  Errors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errorz
      Dimensions: [{Name: FunctionArn, Value: !GetAtt Fn.Arn}]
      AlarmActions: [!Ref Topic]
"""

ALARM_ON_UNKNOWN_MAP_RUN = """
Resources:
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties: {DefinitionUri: statemachine/pipeline.asl.json}
  Topic: {Type: AWS::SNS::Topic}
  Failed:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/States
      MetricName: ExecutionsFailed
      Dimensions: [{Name: StateMachineArn, Value: !Sub "${Machine}/Sliced"}]
      AlarmActions: [!Ref Topic]
"""

SCHEDULE_STRAIGHT_TO_THE_STATE_MACHINE = """
Resources:
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties: {Name: !Sub "${AWS::StackName}-pipeline"}
  Starter:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          AMZPIPE_STATE_MACHINE_ARN: !Sub "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-pipeline"
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: states:StartExecution
              Resource: !Sub "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-pipeline"
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: fire
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: states:StartExecution, Resource: !Ref Machine}
  Daily:
    Type: AWS::Scheduler::Schedule
    Properties:
      Target:
        Arn: !Ref Machine
        RoleArn: !GetAtt Role.Arn
        Input: '{"scheduledTime": "<aws.scheduler.scheduled-time>", "jobs": []}'
"""


def template(text):
    import yaml

    return yaml.load(text, Loader=policies._loader())


def parliament_fatal(doc):
    from parliament import analyze_policy_string

    return [f.issue for f in analyze_policy_string(json.dumps(doc)).findings if policies.is_fatal(f)]


class PolicyLint(unittest.TestCase):
    def test_a_condition_key_the_action_does_not_define_fails_the_lint(self):
        stack = policies.Stack(template(ROLE_WITH_PREFIX_CONDITION), {})
        (doc,) = [d for d in stack.roles()["Fn"] if not d.get("Managed")]
        self.assertEqual(parliament_fatal(doc), ["UNKNOWN_CONDITION_FOR_ACTION"])

    def test_every_policy_of_the_stack_is_well_formed_with_and_without_kms(self):
        for kms in (False, True):
            for role, docs in policies.render(kms=kms)["roles"].items():
                for doc in docs:
                    if not doc.get("Managed"):
                        self.assertEqual(parliament_fatal(doc), [], f"{role} (kms={kms})")

    def test_with_kms_every_function_that_reads_a_secret_may_use_the_key_through_secrets_manager_only(self):
        roles = policies.render(kms=True)["roles"]
        for fn in ["RefreshTokenFunction", "CreateRequestFunction", "PollStatusFunction", "DownloadDecryptFunction"]:
            statements = [s for d in roles[fn] for s in d["Statement"] if s.get("Sid") == "CredentialsKey"]
            self.assertEqual(len(statements), 1, fn)
            (s,) = statements
            self.assertEqual(set(s["Action"]), {"kms:Decrypt", "kms:GenerateDataKey"})
            self.assertEqual(s["Condition"]["StringEquals"]["kms:ViaService"], "secretsmanager.us-east-1.amazonaws.com")
        without = policies.render(kms=False)["roles"]
        self.assertFalse(any(s.get("Sid") == "CredentialsKey" for d in without["RefreshTokenFunction"] for s in d["Statement"]))

    def test_every_function_and_nothing_else_may_seal_and_open_tokens_with_the_token_key(self):
        roles = policies.render()["roles"]
        for fn in ["RefreshTokenFunction", "CreateRequestFunction", "PollStatusFunction", "DownloadDecryptFunction"]:
            (s,) = [s for d in roles[fn] for s in d["Statement"] if s.get("Sid") == "SealTokens"]
            self.assertEqual(set(s["Action"]), {"kms:GenerateDataKey", "kms:Decrypt"})
            self.assertIn(":key/", s["Resource"])
        others = [r for r in roles if r not in ("RefreshTokenFunction", "CreateRequestFunction", "PollStatusFunction", "DownloadDecryptFunction")]
        for role in others:
            actions = {a for d in roles[role] for s in d["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
            self.assertFalse(any(a.startswith("kms:") for a in actions), role)


    def test_with_kms_poll_status_may_decrypt_the_jobs_files_it_reads_back_through_s3(self):
        roles = policies.render(kms=True)["roles"]
        statements = [s for d in roles["PollStatusFunction"] for s in d["Statement"]]
        (reads,) = [s for s in statements if s.get("Sid") == "ReadJobsFiles"]
        self.assertIn("/_amzpipe/jobs/*", " ".join(reads["Resource"]))
        (key,) = [s for s in statements if s.get("Sid") == "JobsFilesKey"]
        self.assertEqual(key["Action"], ["kms:Decrypt"])
        self.assertEqual(key["Condition"]["StringEquals"]["kms:ViaService"], "s3.us-east-1.amazonaws.com")

    def test_the_state_machine_may_start_the_children_of_its_nested_map(self):
        roles = policies.render()["roles"]
        (s,) = [s for d in roles["Pipeline"] for s in d.get("Statement", []) if s.get("Sid") == "DistributedMapChildren"]
        self.assertTrue(any(r.endswith(":stateMachine:amzpipe-pipeline/*") for r in s["Resource"]), s)


class Parameters(unittest.TestCase):
    def test_the_glue_database_is_named_by_a_lower_case_parameter(self):
        t = policies.load_template()
        param = t["Parameters"]["DatabaseName"]
        self.assertEqual(param["AllowedPattern"], "^[a-z0-9_]{1,255}$")
        name = t["Resources"]["GlueDatabase"]["Properties"]["DatabaseInput"]["Name"]
        self.assertEqual((name.tag, name.value), ("Ref", "DatabaseName"))


    def test_no_deployed_function_takes_plain_http_document_urls(self):
        # AMZPIPE_ALLOW_LOOPBACK_HTTP is for the local stack's simulator only (shared/src/steps/services.rs).
        with open(policies.TEMPLATE) as f:
            self.assertNotIn("AMZPIPE_ALLOW_LOOPBACK_HTTP", f.read())


class AlarmContract(unittest.TestCase):
    def test_an_alarm_topic_under_the_aws_managed_sns_key_fails(self):
        problems = policies.alarm_problems(template(ALARM_ON_MANAGED_KEY))
        self.assertEqual(len(problems), 1)
        self.assertIn("alias/aws/sns", problems[0])

    def test_an_alarm_on_a_metric_or_dimension_the_stack_does_not_emit_fails(self):
        problems = policies.alarm_problems(template(ALARM_ON_UNEMITTED_METRIC))
        self.assertEqual(len(problems), 2, problems)

    def test_an_alarm_on_the_children_of_a_map_the_definition_does_not_label_so_fails(self):
        problems = policies.alarm_problems(template(ALARM_ON_UNKNOWN_MAP_RUN))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("'Sliced'", problems[0])
        fixed = template(ALARM_ON_UNKNOWN_MAP_RUN.replace("/Sliced", "/Slices"))
        self.assertEqual(policies.alarm_problems(fixed), [])

    def test_an_alarm_on_the_functions_metric_needs_the_stack_dimension_they_are_given(self):
        text = """
Globals:
  Function:
    Environment:
      Variables: {AMZPIPE_STACK_NAME: !Ref AWS::StackName}
Resources:
  Topic: {Type: AWS::SNS::Topic}
  Failed:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: amzpipe
      MetricName: RunsFailed
      Dimensions: [{Name: Stack, Value: !Ref AWS::StackName}]
      AlarmActions: [!Ref Topic]
"""
        self.assertEqual(policies.alarm_problems(template(text)), [])
        self.assertEqual(len(policies.alarm_problems(template(text.replace("Name: Stack", "Name: StackName")))), 1)
        unset = text.replace("AMZPIPE_STACK_NAME", "OTHER")
        self.assertEqual(len(policies.alarm_problems(template(unset))), 1)

    def test_the_stacks_alarms_keep_the_contract(self):
        self.assertEqual(policies.alarm_problems(policies.load_template()), [])


class ScheduleContract(unittest.TestCase):
    def test_a_schedule_that_starts_the_state_machine_itself_fails_for_executions_cannot_be_named(self):
        problems = policies.schedule_problems(template(SCHEDULE_STRAIGHT_TO_THE_STATE_MACHINE))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("Scheduler cannot name executions", problems[0])

    def test_a_schedule_through_the_starter_without_its_arn_or_the_right_to_invoke_fails(self):
        text = (
            SCHEDULE_STRAIGHT_TO_THE_STATE_MACHINE.replace("Arn: !Ref Machine", "Arn: !GetAtt Starter.Arn")
        )
        problems = policies.schedule_problems(template(text))
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("may not invoke Starter", problems[0])
        self.assertIn("<aws.scheduler.schedule-arn>", problems[1])
        fixed = template(
            text.replace("Action: states:StartExecution, Resource: !Ref Machine", "Action: lambda:InvokeFunction, Resource: !GetAtt Starter.Arn")
            .replace('{"scheduledTime"', '{"schedule": "<aws.scheduler.schedule-arn>", "scheduledTime"')
        )
        self.assertEqual(policies.schedule_problems(fixed), [])

    def test_the_stacks_schedules_keep_the_contract(self):
        self.assertEqual(policies.schedule_problems(policies.load_template()), [])


if __name__ == "__main__":
    unittest.main()
