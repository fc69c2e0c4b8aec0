#!/usr/bin/env python3
"""The stack's IAM policies as AWS would hold them, rendered from infra/template.yaml offline.

moto evaluates no IAM, so what the tests prove stops at the wire. This renders every role's policy
documents for one set of stack parameters -- `!Sub`, `!GetAtt`, `!Ref`, `!If`, `!Join`, conditions, SAM's
`LambdaInvokePolicy` template -- with the resource names the stack would get, so that offline tools can
read them:

    python3 infra/policies.py render [--kms] [--stack NAME] [--region R] [--account N]   # JSON on stdout
    python3 infra/policies.py lint                                                        # parliament
    python3 infra/policies.py alarms                                                      # alarm contract

`lint` runs parliament (pinned in the Makefile's infra tools) over every rendered policy, with and
without `KmsKeyArn`. Findings that mean a policy cannot work as written -- an unknown action or prefix,
a condition key the action does not define, a resource type the action does not take, a malformed
statement -- fail; the others are printed.

`alarms` checks the alarm contract: every alarm watches a metric, with the dimensions, that a resource of
this stack really emits (a Step Functions metric of this state machine, a Lambda metric of one of its
functions, an SQS metric of its queue), and every topic an alarm notifies can be published to by
CloudWatch: unencrypted, or under a key of the stack whose policy lets cloudwatch.amazonaws.com
decrypt and generate data keys (an AWS-managed key such as alias/aws/sns never does).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parent / "template.yaml"

# parliament findings that mean "this statement does not do what it says": they fail the lint.
FATAL_FINDINGS = {
    "UNKNOWN_ACTION",
    "UNKNOWN_PREFIX",
    "UNKNOWN_CONDITION_FOR_ACTION",
    "UNKNOWN_OPERATOR",
    "MISMATCHED_TYPE",
    "MISMATCHED_TYPE_BUT_USABLE",
    "RESOURCE_MISMATCH",
    "MALFORMED",
    "MALFORMED_JSON",
    "INVALID_ARN",
    "UNKNOWN_FEDERATION_SOURCE",
    "UNKNOWN_PRINCIPAL",
}


# parliament's IAM definition marks both `execution*` and `express*` as required resources of
# states:DescribeExecution, so that every Standard execution ARN (what a Distributed Map's children are)
# "mismatches"; AWS's Service Authorization Reference takes either. This one finding is noted, not failed.
KNOWN_FALSE_FINDINGS = {("RESOURCE_MISMATCH", "states:DescribeExecution")}


def is_fatal(finding):
    """Whether a parliament finding means the statement cannot work as written."""
    if finding.issue not in FATAL_FINDINGS:
        return False
    details = finding.detail if isinstance(finding.detail, list) else []
    actions = {d.get("action") for d in details if isinstance(d, dict)}
    return not (actions and all((finding.issue, a) in KNOWN_FALSE_FINDINGS for a in actions))


class Tagged:
    """A CloudFormation short-form intrinsic (`!Sub x`), as read from YAML."""

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value


def _loader():
    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return Tagged(suffix, value)

    Loader.add_multi_constructor("!", construct)
    return Loader


def load_template(path=TEMPLATE):
    with open(path) as f:
        return yaml.load(f, Loader=_loader())


class Stack:
    """One deployment of the template: parameters, pseudo parameters, and the physical names its
    resources would get."""

    def __init__(self, template, parameters, stack="amzpipe", region="us-east-1", account="123456789012", names=None):
        self.template = template
        self.names = dict(names or {})
        self.resources = template.get("Resources", {})
        self.params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.params.update({k: str(v) for k, v in parameters.items()})
        self.pseudo = {
            "AWS::StackName": stack,
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        self.stack, self.region, self.account = stack, region, account
        self.conditions = {}
        for name, expr in template.get("Conditions", {}).items():
            self.conditions[name] = bool(self.resolve(expr))

    # -- names and attributes -----------------------------------------------------------------

    def physical_name(self, logical):
        if logical in self.names:
            return self.names[logical]
        resource = self.resources[logical]
        props = resource.get("Properties", {}) or {}
        kind = resource["Type"]
        if kind == "AWS::S3::Bucket":
            named = self.resolve(props.get("BucketName"))
            return named or f"{self.stack}-{logical.lower()}-abc123"
        if kind == "AWS::SecretsManager::Secret":
            return self.resolve(props.get("Name"))
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine") and props.get("Name"):
            return self.resolve(props["Name"])
        if kind == "AWS::Glue::Database":
            return self.resolve(props["DatabaseInput"]["Name"])
        return f"{self.stack}-{logical}-ABC123"

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        resource = self.resources[name]
        kind = resource["Type"]
        physical = self.physical_name(name)
        if kind in ("AWS::SNS::Topic",):
            return f"arn:aws:sns:{self.region}:{self.account}:{physical}"
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{physical}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{physical}"
        if kind == "AWS::SecretsManager::Secret":
            return self.secret_arn(physical)
        if kind == "AWS::KMS::Key":
            return physical if name in self.names else "1234abcd-12ab-34cd-56ef-1234567890ab"
        return physical

    def secret_arn(self, name):
        return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{name}-AbCdEf"

    def get_att(self, logical, attribute):
        resource = self.resources[logical]
        kind = resource["Type"]
        physical = self.physical_name(logical)
        arns = {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{self.region}:{self.account}:table/{physical}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{self.region}:{self.account}:function:{physical}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{self.region}:{self.account}:{physical}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{self.region}:{self.account}:log-group:{physical}:*",
            "AWS::IAM::Role": f"arn:aws:iam::{self.account}:role/{physical}",
            "AWS::KMS::Key": f"arn:aws:kms:{self.region}:{self.account}:key/{self.ref(logical)}",
            "AWS::SNS::Topic": f"arn:aws:sns:{self.region}:{self.account}:{physical}",
        }
        if attribute == "Arn":
            return arns[kind]
        if attribute == "QueueName":
            return physical
        if attribute == "KeyId":
            return self.ref(logical)
        raise KeyError(f"{logical}.{attribute}")

    # -- intrinsics ---------------------------------------------------------------------------

    def resolve(self, value):
        if isinstance(value, Tagged):
            return self.intrinsic(value.tag, value.value)
        if isinstance(value, dict):
            if len(value) == 1:
                (key, arg), = value.items()
                if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                    return self.intrinsic(key.replace("Fn::", ""), arg)
            out = {}
            for k, v in value.items():
                r = self.resolve(v)
                if r is not None:
                    out[k] = r
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not None]
        return value

    def intrinsic(self, tag, arg):
        if tag == "Ref":
            return self.ref(arg)
        if tag == "GetAtt":
            logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(logical, attribute)
        if tag == "Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

            def fill(m):
                name = m.group(1)
                if name in extra:
                    return str(extra[name])
                if "." in name:
                    return str(self.get_att(*name.split(".", 1)))
                return str(self.ref(name))

            return re.sub(r"\$\{([^}!]+)\}", fill, text)
        if tag == "If":
            condition, yes, no = arg
            return self.resolve(yes if self.conditions[condition] else no)
        if tag == "Equals":
            a, b = (self.resolve(x) for x in arg)
            return a == b
        if tag == "Not":
            return not self.resolve(arg[0])
        if tag == "And":
            return all(self.resolve(x) for x in arg)
        if tag == "Or":
            return any(self.resolve(x) for x in arg)
        if tag == "Condition":
            return self.conditions[arg]
        if tag == "Join":
            sep, items = arg
            return sep.join(str(x) for x in self.resolve(items))
        if tag == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if tag == "Split":
            sep, text = arg
            return self.resolve(text).split(sep)
        raise ValueError(f"unsupported intrinsic !{tag}")

    # -- policies -----------------------------------------------------------------------------

    def sam_policy(self, entry):
        """A SAM function's `Policies` entry as policy documents (inline documents and the policy
        templates this template uses)."""
        if isinstance(entry, dict) and "Statement" in entry:
            return self.resolve(entry)
        if isinstance(entry, dict) and "LambdaInvokePolicy" in entry:
            function = self.resolve(entry["LambdaInvokePolicy"]["FunctionName"])
            arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{function}"
            return {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [arn, f"{arn}:*"]}],
            }
        raise ValueError(f"unsupported SAM policy entry {entry!r}")

    def roles(self):
        """`{role: [policy document, …]}` for every function, state machine and IAM role."""
        out = {}
        for logical, resource in self.resources.items():
            kind = resource["Type"]
            props = resource.get("Properties", {}) or {}
            if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
                docs = [self.sam_policy(p) for p in props.get("Policies", [])]
                if kind == "AWS::Serverless::Function":
                    docs.append(_basic_execution(self, logical, props))
                out[logical] = docs
            elif kind == "AWS::IAM::Role":
                out[logical] = [self.resolve(p["PolicyDocument"]) for p in props.get("Policies", [])]
        return out

    def resource_policies(self):
        """Key policies, topic policies and bucket policies, by resource."""
        out = {}
        for logical, resource in self.resources.items():
            props = resource.get("Properties", {}) or {}
            if resource["Type"] == "AWS::KMS::Key":
                out[logical] = self.resolve(props["KeyPolicy"])
            elif resource["Type"] in ("AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
                out[logical] = self.resolve(props["PolicyDocument"])
        return out


def _basic_execution(stack, logical, props):
    """What SAM adds to every function role: AWSLambdaBasicExecutionRole, and X-Ray write access with
    `Tracing: Active` (managed policies, shown as their statements)."""
    statements = [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements, "Managed": True}


def render(kms=False, stack="amzpipe", region="us-east-1", account="123456789012", names=None, kms_key_arn=None):
    """The stack's policies. `names` maps logical ids to the physical names a deployment gave them (a
    KMS key's key id); `kms_key_arn` is the `KmsKeyArn` parameter when `kms`."""
    params = {}
    if kms:
        params["KmsKeyArn"] = kms_key_arn or f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    s = Stack(load_template(), params, stack=stack, region=region, account=account, names=names)
    return {"parameters": s.params, "roles": s.roles(), "resourcePolicies": s.resource_policies()}


def lint():
    from parliament import analyze_policy_string

    fatal = 0
    for kms in (False, True):
        rendered = render(kms=kms)
        label = "KmsKeyArn set" if kms else "no KmsKeyArn"
        for role, docs in rendered["roles"].items():
            for doc in docs:
                if doc.get("Managed"):
                    continue  # AWS-managed policies: not ours to lint
                for n, statement in enumerate(doc["Statement"]):
                    single = {"Version": "2012-10-17", "Statement": [statement]}
                    where = f"{role} statement {statement.get('Sid', n)} ({label})"
                    for f in analyze_policy_string(json.dumps(single)).findings:
                        line = f"{where}: {f.issue}: {f.detail or f.title}"
                        if is_fatal(f):
                            fatal += 1
                            print("FAIL " + line)
                        else:
                            print("note " + line)
    if fatal:
        print(f"parliament: {fatal} finding(s) mean a policy cannot work as written")
        return 1
    print("parliament: every policy is well-formed for its actions, resources and condition keys")
    return 0


# The metrics the stack's alarms may watch: namespace → (metric names, the dimension, the resource types
# whose Ref or attribute names it, and how: "Ref" or an attribute).
ALARM_METRICS = {
    "AWS/States": (
        {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionThrottled", "ExecutionsStarted"},
        "StateMachineArn",
        {"AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"},
        "Ref",
    ),
    "AWS/Lambda": (
        {"Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions"},
        "FunctionName",
        {"AWS::Serverless::Function", "AWS::Lambda::Function"},
        "Ref",
    ),
    "AWS/SQS": (
        {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"},
        "QueueName",
        {"AWS::SQS::Queue"},
        "QueueName",
    ),
    # The functions' own metrics (shared/src/steps/metrics.rs: EMF lines), checked by
    # _function_metric_problems.
    "amzpipe": (
        {
            "RunsFailed", "RunsSucceeded", "Throttles", "Rows", "Bytes", "DaysOverdue", "DaysFailed",
            "NewestFinalDayAge", "NewestProvisionalDayAge", "RowsDroppedShare",
        },
        "Stack",
        set(),
        None,
    ),
}

# The namespace of the metrics the functions publish themselves, with the stack's name as dimension
# `Stack`, from the environment variable AMZPIPE_STACK_NAME (shared/src/steps/metrics.rs).
FUNCTION_METRICS_NAMESPACE = "amzpipe"


def _function_metric_problems(template, logical, props):
    """An alarm on a metric the functions emit: one of theirs, with exactly the dimension Stack set to
    the stack's name, which every function is given as AMZPIPE_STACK_NAME (or it publishes nothing)."""
    problems = []
    metrics = ALARM_METRICS[FUNCTION_METRICS_NAMESPACE][0]
    if props.get("MetricName") not in metrics:
        problems.append(f"{logical}: {FUNCTION_METRICS_NAMESPACE} {props.get('MetricName')!r} is not a metric the functions emit")
    dimensions = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
    stack_name = lambda v: isinstance(v, Tagged) and v.tag == "Ref" and v.value == "AWS::StackName"
    if set(dimensions) != {"Stack"} or not stack_name(dimensions["Stack"]):
        problems.append(f"{logical}: the functions' metrics carry exactly the dimension Stack = !Ref AWS::StackName")
    env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    if not stack_name(env.get("AMZPIPE_STACK_NAME")):
        problems.append(f"{logical}: the functions publish no metric without AMZPIPE_STACK_NAME = !Ref AWS::StackName")
    return problems


def _names(value):
    """The (logical id, attribute) a raw `!Ref x` / `!GetAtt x.y` names, else None."""
    if isinstance(value, Tagged) and value.tag == "Ref":
        return value.value, "Ref"
    if isinstance(value, Tagged) and value.tag == "GetAtt":
        logical, attribute = value.value.split(".", 1) if isinstance(value.value, str) else value.value
        return logical, attribute
    return None


def _map_run_label(value):
    """(state machine logical id, label) of a `!Sub "${Machine}/Label"` dimension, else None."""
    if isinstance(value, Tagged) and value.tag == "Sub" and isinstance(value.value, str):
        m = re.fullmatch(r"\$\{(\w+)\}/([A-Za-z0-9_-]+)", value.value)
        if m:
            return m.group(1), m.group(2)
    return None


def _distributed_map_labels(resource):
    """The labels of the Distributed Map states in a state machine's definition file."""
    uri = (resource.get("Properties") or {}).get("DefinitionUri")
    if not isinstance(uri, str):
        return set()
    text = (TEMPLATE.parent / uri).read_text()
    definition = json.loads(re.sub(r"\$\{\w+\}", "0", text))
    labels = set()

    def walk(node):
        if isinstance(node, dict):
            mode = ((node.get("ItemProcessor") or {}).get("ProcessorConfig") or {}).get("Mode")
            if node.get("Type") == "Map" and mode == "DISTRIBUTED" and "Label" in node:
                labels.add(node["Label"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(definition)
    return labels


def _admits_cloudwatch(key_policy):
    needed = {"kms:Decrypt", "kms:GenerateDataKey*"}
    for statement in key_policy.get("Statement", []):
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if (
            statement.get("Effect") == "Allow"
            and "cloudwatch.amazonaws.com" in services
            and "Condition" not in statement
            and (needed <= set(actions) or "kms:*" in actions)
        ):
            return True
    return False


def alarm_problems(template):
    """Every way the template's alarms break the alarm contract, as sentences."""
    resources = template.get("Resources", {})
    stack = Stack(template, {})
    problems = []
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource.get("Properties", {})
        namespace, metric = props.get("Namespace"), props.get("MetricName")
        if namespace not in ALARM_METRICS:
            problems.append(f"{logical}: namespace {namespace!r} is not one the stack emits")
            continue
        if namespace == FUNCTION_METRICS_NAMESPACE:
            problems.extend(_function_metric_problems(template, logical, props))
            continue
        metrics, dimension, types, how = ALARM_METRICS[namespace]
        if metric not in metrics:
            problems.append(f"{logical}: {namespace} {metric!r} is not a metric the stack emits")
        dimensions = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        if set(dimensions) != {dimension}:
            problems.append(f"{logical}: {namespace} {metric} needs exactly the dimension {dimension}, not {sorted(dimensions)}")
        else:
            named = _names(dimensions[dimension])
            labelled = _map_run_label(dimensions[dimension])
            if labelled is not None and namespace == "AWS/States":
                # `!Sub "${Machine}/Label"`: the child executions of the machine's Distributed Map
                # labelled so, which emit their metrics under that name.
                named = (labelled[0], "Ref")
                if labelled[1] not in _distributed_map_labels(resources.get(labelled[0], {})):
                    problems.append(f"{logical}: {labelled[0]} has no Distributed Map labelled {labelled[1]!r}")
            if named is None or named[0] not in resources or resources[named[0]]["Type"] not in types or named[1] != how:
                problems.append(f"{logical}: dimension {dimension} must be {how} of one of the stack's {sorted(types)}")
        for action in props.get("AlarmActions", []):
            named = _names(action)
            if named is None or named[0] not in resources or resources[named[0]]["Type"] != "AWS::SNS::Topic":
                problems.append(f"{logical}: an alarm action is not a topic of the stack")
                continue
            topic = named[0]
            key = (resources[topic].get("Properties") or {}).get("KmsMasterKeyId")
            if key is None:
                continue
            key_named = _names(key)
            if key_named is None or key_named[0] not in resources or resources[key_named[0]]["Type"] != "AWS::KMS::Key":
                problems.append(
                    f"{logical}: topic {topic} is encrypted with {stack.resolve(key)!r}, a key whose policy the stack "
                    "does not control (CloudWatch cannot publish under alias/aws/sns)"
                )
                continue
            policy = stack.resolve(resources[key_named[0]]["Properties"]["KeyPolicy"])
            if not _admits_cloudwatch(policy):
                problems.append(
                    f"{logical}: the policy of {key_named[0]} (topic {topic}) does not let cloudwatch.amazonaws.com "
                    "use kms:Decrypt and kms:GenerateDataKey*"
                )
    return problems


def _allows(docs, action, resource):
    """Whether an Allow statement of `docs` names `action` and `resource` exactly (no wildcards)."""
    for doc in docs:
        for st in doc.get("Statement", []):
            if st.get("Effect") != "Allow" or "Condition" in st:
                continue
            if action in [st.get("Action")] + list(st.get("Action") or []) and resource in (
                [st.get("Resource")] + list(st.get("Resource") or [])
            ):
                return True
    return False


def schedule_problems(template):
    """Every way the template's schedules break the schedule contract, as sentences: each schedule
    invokes a function that starts the state machine's executions by name (shared/src/steps/start.rs),
    whose role may start exactly the stack's state machine, with a firing (the schedule's ARN, its
    scheduled time, the jobs) as input, through a role that may invoke that function."""
    resources = template.get("Resources", {})
    stack = Stack(template, {})
    roles = stack.roles()
    machines = [n for n, r in resources.items() if r["Type"] in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")]
    problems = []
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Scheduler::Schedule":
            continue
        target = (resource.get("Properties") or {}).get("Target") or {}
        named = _names(target.get("Arn"))
        if named is None or named[1] != "Arn" or resources.get(named[0], {}).get("Type") != "AWS::Serverless::Function":
            problems.append(
                f"{logical}: its target must be !GetAtt <function>.Arn (Scheduler cannot name executions; the function does)"
            )
            continue
        function = named[0]
        function_arn = stack.get_att(function, "Arn")
        role = _names(target.get("RoleArn"))
        if role is None or not _allows(roles.get(role[0], []), "lambda:InvokeFunction", function_arn):
            problems.append(f"{logical}: its role may not invoke {function} (lambda:InvokeFunction on its ARN)")
        env = ((resources[function].get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        machine_arn = stack.resolve(env.get("AMZPIPE_STATE_MACHINE_ARN"))
        if machine_arn not in [stack.ref(m) for m in machines]:
            problems.append(
                f"{logical}: {function}'s AMZPIPE_STATE_MACHINE_ARN ({machine_arn!r}) is not the stack's state machine"
            )
        elif not _allows(roles.get(function, []), "states:StartExecution", machine_arn):
            problems.append(f"{logical}: {function}'s role may not start {machine_arn} (states:StartExecution)")
        text = stack.resolve(target.get("Input"))
        try:
            firing = json.loads(text)
        except (TypeError, ValueError) as e:
            problems.append(f"{logical}: its input is not JSON: {e}")
            continue
        if firing.get("schedule") != "<aws.scheduler.schedule-arn>":
            problems.append(f'{logical}: its input must carry "schedule": "<aws.scheduler.schedule-arn>" (the execution\'s name)')
        if firing.get("scheduledTime") != "<aws.scheduler.scheduled-time>":
            problems.append(f'{logical}: its input must carry "scheduledTime": "<aws.scheduler.scheduled-time>"')
        if not isinstance(firing.get("jobs"), list) and not isinstance(firing.get("jobsFile"), dict):
            problems.append(f"{logical}: its input carries neither jobs nor a jobsFile")
    return problems


def _report(problems, passed):
    """Prints each problem as a failure, or `passed`; the exit status."""
    for p in problems:
        print("FAIL " + p)
    if problems:
        return 1
    print(passed)
    return 0


def schedules():
    return _report(
        schedule_problems(load_template()),
        "schedules: every schedule fires refresh-token, which may start the stack's state machine by name",
    )


def alarms():
    return _report(
        alarm_problems(load_template()),
        "alarms: every alarm watches a metric the stack emits and can reach its topic",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["render", "lint", "alarms", "schedules"])
    parser.add_argument("--kms", action="store_true", help="render with KmsKeyArn set")
    parser.add_argument("--stack", default="amzpipe")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--name", action="append", default=[], metavar="LOGICAL=PHYSICAL",
                        help="the physical name (a KMS key: its key id) a deployment gave a resource")
    parser.add_argument("--kms-key-arn", help="the KmsKeyArn parameter, with --kms")
    args = parser.parse_args()
    if args.command == "render":
        names = dict(n.split("=", 1) for n in args.name)
        rendered = render(args.kms, args.stack, args.region, args.account, names, args.kms_key_arn)
        json.dump(rendered, sys.stdout, indent=2)
        print()
        return 0
    if args.command == "alarms":
        return alarms()
    if args.command == "schedules":
        return schedules()
    return lint()


if __name__ == "__main__":
    sys.exit(main())
