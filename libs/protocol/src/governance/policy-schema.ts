// JSON schema of the operator's federation policy (the file named by `policyServer.policyFile`). Every
// object is closed, so a misspelt key is an error, not a rule silently ignored.

const glob = { type: 'string', minLength: 1, maxLength: 255 } as const;
const globs = { type: 'array', items: glob, maxItems: 10_000 } as const;
const ruleId = { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' } as const;
const reason = { type: 'string', minLength: 1, maxLength: 500 } as const;
const rate = {
  type: 'object',
  additionalProperties: false,
  required: ['events', 'perSeconds'],
  properties: { events: { type: 'integer', minimum: 1 }, perSeconds: { type: 'integer', minimum: 1, maximum: 86_400 } },
} as const;

function closed(properties: Record<string, unknown>, required: string[] = []) {
  return { type: 'object', additionalProperties: false, properties, required } as const;
}

const serverRule = closed({ id: ruleId, action: { enum: ['allow', 'deny'] }, servers: { ...globs, minItems: 1 }, reason }, ['id', 'action', 'servers']);

const roomRule = closed(
  {
    id: ruleId,
    rooms: { ...globs, minItems: 1 },
    reason,
    servers: closed({ allow: globs, deny: globs }),
    join: closed({ servers: globs, users: globs }),
    eventTypes: closed({ allow: globs, deny: globs }),
    attachments: closed({ mimetypes: globs, maxBytes: { type: 'integer', minimum: 0 } }),
    links: closed({ allow: globs, deny: globs }),
    keywords: closed({ deny: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 200 }, maxItems: 10_000 } }, ['deny']),
    rate: closed({ perSender: rate, perServer: rate }),
    serverAcl: { type: 'boolean' },
  },
  ['id', 'rooms'],
);

export const policySchema = closed(
  {
    version: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', minLength: 1, maxLength: 64 }] },
    default: { enum: ['allow', 'deny'] },
    servers: { type: 'array', items: serverRule, maxItems: 10_000 },
    rooms: { type: 'array', items: roomRule, maxItems: 10_000 },
  },
  ['version'],
);
