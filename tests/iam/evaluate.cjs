#!/usr/bin/env node
// The permission contract: every AWS call the functions and the state machine made in a recorded run,
// evaluated offline against the IAM policies the stack gives their roles.
//
//   node tests/iam/evaluate.cjs <input.json>      (prints a JSON report on stdout)
//
// Input: {
//   "recording": [ moto recorder entries: {method, url, headers, body, body_encoded} ],
//   "principals": { "<access key id>": "<role logical id>" },   // who signed each request
//   "defaultRole": "<role logical id>",                          // requests signed by anyone else
//   "roles": { "<role logical id>": [policy documents] },        // infra/policies.py render
//   "resourcePolicies": { "<logical id>": policy document },
//   "keyPolicies": { "<key id>": "<logical id of its policy>" }, // KMS keys of the stack
//   "secretArns": { "<secret name>": "<secret ARN>" },
//   "secretKeys": { "<secret name>": "<KMS key ARN>" },          // secrets under a customer key
//   "bucketKeys": { "<bucket>": "<KMS key ARN>" },               // buckets encrypted by default under a key
//   "bucketPolicy": "<logical id>", "region": "us-east-1", "account": "123456789012"
// }
//
// Each recorded HTTP request is read as AWS reads it: the service from its SigV4 scope, the action
// from the JSON protocol's X-Amz-Target or S3's REST method and query, the resource ARN from the
// request, and the condition context AWS supplies (dynamodb:LeadingKeys, kms:EncryptionContext…;
// aws:SecureTransport true, as the functions reach AWS over TLS). A call that a service makes to KMS
// on the caller's behalf (S3 SSE-KMS, Secrets Manager under a customer key) is added as AWS checks it:
// kms:GenerateDataKey/Decrypt on that key with kms:ViaService. Each distinct request is evaluated with
// @cloud-copilot/iam-simulate (pinned; installed by `make tools`), with the resource's policy where it
// has one (bucket policy, key policy).
//
// Report: { "evaluated": n, "denied": [{role, action, resource, context, result, unmatched}],
//           "unused": { role: [granted actions never exercised] }, "errors": [...] }

'use strict'

const fs = require('fs')
const path = require('path')
const { createRequire } = require('module')

const NODE_MODULES =
  process.env.AMZPIPE_NODE_MODULES || path.join(__dirname, '..', '..', '.tools', 'iam', 'node_modules')
const requireTool = createRequire(path.join(NODE_MODULES, 'noop.js'))
const { runSimulation } = requireTool('@cloud-copilot/iam-simulate')

function header(headers, name) {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase())
  return key === undefined ? undefined : headers[key]
}

function bodyText(entry) {
  if (!entry.body) return ''
  return entry.body_encoded ? Buffer.from(entry.body, 'base64').toString('utf8') : entry.body
}

function signer(headers) {
  const auth = header(headers, 'Authorization') || ''
  const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth)
  return m ? { accessKey: m[1], region: m[2], service: m[3] } : null
}

// One recorded request as the IAM requests AWS authorizes for it.
function iamRequests(entry, input) {
  const { region, account } = input
  const headers = entry.headers || {}
  const sig = signer(headers)
  if (!sig) return []
  const url = new URL(entry.url)
  const target = header(headers, 'X-Amz-Target')
  const out = []
  const push = (action, resource, context = {}) => out.push({ action, resource, context })
  if (sig.service === 'dynamodb' && target) {
    const op = target.split('.')[1]
    const body = JSON.parse(bodyText(entry) || '{}')
    const table = `arn:aws:dynamodb:${region}:${account}:table/${body.TableName}`
    const context = {}
    const key = body.Key || body.Item
    if (key && key.pk && key.pk.S) context['dynamodb:LeadingKeys'] = [key.pk.S]
    push(`dynamodb:${op}`, table, context)
  } else if (sig.service === 'secretsmanager' && target) {
    const op = target.split('.')[1]
    const body = JSON.parse(bodyText(entry) || '{}')
    const id = body.SecretId || body.Name
    const arn = id.startsWith('arn:') ? id : input.secretArns[id]
    if (!arn) throw new Error(`no ARN known for secret ${id}`)
    push(`secretsmanager:${op}`, arn)
    const key = input.secretKeys[id]
    if (key) {
      const kmsAction = op === 'GetSecretValue' ? 'kms:Decrypt' : 'kms:GenerateDataKey'
      push(kmsAction, key, { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` })
    }
  } else if (sig.service === 'kms' && target) {
    const op = target.split('.')[1]
    const body = JSON.parse(bodyText(entry) || '{}')
    const key = input.kmsKeys[body.KeyId] || body.KeyId
    if (!key || !key.startsWith('arn:')) throw new Error(`no ARN known for KMS key ${body.KeyId}`)
    const context = {}
    for (const [k, v] of Object.entries(body.EncryptionContext || {})) context[`kms:EncryptionContext:${k}`] = v
    push(`kms:${op}`, key, context)
  } else if (sig.service === 's3') {
    const [, bucket, ...rest] = url.pathname.split('/')
    const key = decodeURIComponent(rest.join('/'))
    const q = url.searchParams
    const object = `arn:aws:s3:::${bucket}/${key}`
    const method = entry.method.toUpperCase()
    if (!key) {
      if (method === 'GET' && q.has('uploads')) push('s3:ListBucketMultipartUploads', `arn:aws:s3:::${bucket}`)
      else if (method === 'GET')
        // ListObjects(V2): AWS supplies the asked prefix as s3:prefix.
        push('s3:ListBucket', `arn:aws:s3:::${bucket}`, q.has('prefix') ? { 's3:prefix': q.get('prefix') } : {})
      else if (method === 'POST' && q.has('delete')) {
        // DeleteObjects is authorized as s3:DeleteObject on each key it names.
        const keys = [...bodyText(entry).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])
        if (keys.length === 0) throw new Error('a DeleteObjects request whose keys were not recorded')
        for (const k of keys) push('s3:DeleteObject', `arn:aws:s3:::${bucket}/${k}`)
      } else throw new Error(`unrecognised S3 bucket request ${method} ${url.pathname}${url.search}`)
    } else if (method === 'DELETE' && q.has('uploadId')) push('s3:AbortMultipartUpload', object)
    else if (method === 'GET' && q.has('uploadId')) push('s3:ListMultipartUploadParts', object)
    else if (method === 'PUT' || method === 'POST') push('s3:PutObject', object)
    else if (method === 'GET' || method === 'HEAD') push('s3:GetObject', object)
    else if (method === 'DELETE') push('s3:DeleteObject', object)
    const sseKey = header(headers, 'x-amz-server-side-encryption-aws-kms-key-id')
    if (sseKey && method === 'POST' && q.has('uploads')) {
      const arn = input.kmsKeys[sseKey] || sseKey
      for (const a of ['kms:GenerateDataKey', 'kms:Decrypt'])
        push(a, arn, { 'kms:ViaService': `s3.${region}.amazonaws.com` })
    } else if (sseKey && method === 'PUT' && !q.has('partNumber')) {
      push('kms:GenerateDataKey', input.kmsKeys[sseKey] || sseKey, { 'kms:ViaService': `s3.${region}.amazonaws.com` })
    }
    // Reading an object stored under SSE-KMS needs kms:Decrypt on its key, which S3 asks for on the
    // caller's behalf (the GET names no key: the bucket's default encryption chose it when it was written).
    const bucketKey = (input.bucketKeys || {})[bucket]
    if (bucketKey && method === 'GET' && !q.has('uploadId')) {
      push('kms:Decrypt', input.kmsKeys[bucketKey] || bucketKey, { 'kms:ViaService': `s3.${region}.amazonaws.com` })
    }
  } else if (sig.service === 'glue' && target) {
    // Glue authorizes a table call on the catalog, the database and the table.
    const op = target.split('.')[1]
    const body = JSON.parse(bodyText(entry) || '{}')
    const db = body.DatabaseName
    const name = body.Name || (body.TableInput && body.TableInput.Name)
    if (!db) throw new Error(`no database in a glue:${op} request`)
    push(`glue:${op}`, `arn:aws:glue:${region}:${account}:catalog`)
    push(`glue:${op}`, `arn:aws:glue:${region}:${account}:database/${db}`)
    if (name) push(`glue:${op}`, `arn:aws:glue:${region}:${account}:table/${db}/${name}`)
  } else if (sig.service === 'states' && target && input.principals[sig.accessKey]) {
    // A function's call to Step Functions (refresh-token starting a schedule's firing): JSON protocol,
    // the state machine or execution named in the body.
    const op = target.split('.')[1]
    const body = JSON.parse(bodyText(entry) || '{}')
    const resource = body.stateMachineArn || body.executionArn
    if (!resource) throw new Error(`no state machine or execution in a states:${op} request`)
    push(`states:${op}`, resource)
  } else if (sig.service === 'states' || sig.service === 'lambda') {
    // The test's own calls to Step Functions and the interpreter's Lambda invokes (granted by SAM's
    // LambdaInvokePolicy; the router answers them before moto): not the functions' calls.
  } else {
    throw new Error(`unrecognised request to ${sig.service}: ${entry.method} ${url.pathname}`)
  }
  return out.map((r) => ({ ...r, accessKey: sig.accessKey }))
}

function resourcePolicyFor(resource, input) {
  if (resource.startsWith('arn:aws:s3:::') && input.bucketPolicy) return input.resourcePolicies[input.bucketPolicy]
  if (resource.startsWith('arn:aws:kms:')) {
    const keyId = resource.split('/').pop()
    const logical = input.keyPolicies[keyId]
    if (logical) return input.resourcePolicies[logical]
    // A key made outside the stack (KmsKeyArn): its policy is the account's default, which delegates to IAM.
    return {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${input.account}:root` }, Action: 'kms:*', Resource: '*' }],
    }
  }
  return undefined
}

// iam-simulate (0.1.173, the latest) drops request context keys whose variable part follows a colon,
// such as kms:EncryptionContext:purpose, so a condition on one never matches there. Such conditions are
// evaluated here instead, as AWS does: StringEquals exactly (the key's name and its value are case
// sensitive for KMS encryption context), StringLike with * and ?. A statement whose condition holds keeps
// its other conditions for the simulator; one whose condition fails is dropped for this request. Any
// other operator on such a key is an error, so that nothing passes unevaluated.
const CONTEXT_KEY_WITH_VARIABLE = /^kms:EncryptionContext:(.+)$/i

function likeToRegex(pattern) {
  return new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
}

function withEncryptionContextEvaluated(statement, context) {
  if (!statement.Condition) return statement
  const condition = {}
  for (const [operator, keys] of Object.entries(statement.Condition)) {
    const rest = {}
    for (const [key, wanted] of Object.entries(keys)) {
      const m = CONTEXT_KEY_WITH_VARIABLE.exec(key)
      if (!m) {
        rest[key] = wanted
        continue
      }
      const actual = context[`kms:EncryptionContext:${m[1]}`]
      const values = [wanted].flat()
      let holds
      if (operator === 'StringEquals') holds = actual !== undefined && values.includes(actual)
      else if (operator === 'StringLike') holds = actual !== undefined && values.some((v) => likeToRegex(v).test(actual))
      else throw new Error(`the evaluator cannot read ${operator} on ${key}`)
      if (!holds) return null
    }
    if (Object.keys(rest).length) condition[operator] = rest
  }
  const { Condition, ...bare } = statement
  return Object.keys(condition).length ? { ...bare, Condition: condition } : bare
}

function actionsOf(statement) {
  return [statement.Action].flat().filter(Boolean)
}

async function main() {
  const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  input.kmsKeys = input.kmsKeys || {}
  const seen = new Map()
  const errors = []
  for (const entry of input.recording) {
    try {
      for (const r of iamRequests(entry, input)) {
        const role = input.principals[r.accessKey] || input.defaultRole
        const id = JSON.stringify([role, r.action, r.resource, r.context])
        if (!seen.has(id)) seen.set(id, { role, ...r })
      }
    } catch (e) {
      errors.push(String(e.message || e))
    }
  }
  const denied = []
  const exercised = {}
  for (const r of seen.values()) {
    exercised[r.role] = exercised[r.role] || new Set()
    exercised[r.role].add(r.action)
    const docs = (input.roles[r.role] || []).map(({ Managed, ...policy }, i) => ({
      name: `${r.role}-${i}`,
      policy: {
        ...policy,
        Statement: [policy.Statement].flat().map((st) => withEncryptionContextEvaluated(st, r.context)).filter(Boolean),
      },
    }))
    const simulation = {
      identityPolicies: docs,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: r.action,
        principal: `arn:aws:iam::${input.account}:role/${r.role}`,
        resource: { resource: r.resource, accountId: input.account },
        contextVariables: { 'aws:SecureTransport': 'true', ...r.context },
      },
    }
    const policy = resourcePolicyFor(r.resource, input)
    if (policy) simulation.resourcePolicy = policy
    const result = await runSimulation(simulation, {})
    if (result.resultType === 'error') {
      denied.push({ role: r.role, action: r.action, resource: r.resource, context: r.context, result: 'Error', errors: result.errors })
    } else if (result.overallResult !== 'Allowed') {
      const analysis = result.result && result.result.analysis
      const unmatched = ((analysis && analysis.identityAnalysis && analysis.identityAnalysis.unmatchedStatements) || [])
        .filter((s) => s.actionMatch)
        .map((s) => ({ policy: s.policyId, statement: s.statement, resourceMatch: s.resourceMatch, conditionMatch: s.conditionMatch }))
      denied.push({ role: r.role, action: r.action, resource: r.resource, context: r.context, result: result.overallResult, unmatched })
    }
  }
  const unused = {}
  for (const [role, docs] of Object.entries(input.roles)) {
    if (!exercised[role]) continue
    const granted = new Set(docs.filter((d) => !d.Managed).flatMap((d) => d.Statement.flatMap(actionsOf)))
    const idle = [...granted].filter((a) => !exercised[role].has(a) && !a.includes('*')).sort()
    if (idle.length) unused[role] = idle
  }
  const report = { evaluated: seen.size, denied, unused, errors, exercised: Object.fromEntries(Object.entries(exercised).map(([k, v]) => [k, [...v].sort()])) }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
}

main().catch((e) => {
  process.stderr.write(String((e && e.stack) || e) + '\n')
  process.exit(1)
})
