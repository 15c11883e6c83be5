// JSON schema for the registration file. Unknown top-level keys are allowed: bridges keep their own
// settings beside the standard ones (Rocket.Chat writes a `rocketchat:` block into the same file).

const namespaceList = {
  type: 'array',
  items: {
    type: 'object',
    required: ['exclusive', 'regex'],
    properties: {
      exclusive: { type: 'boolean' },
      regex: { type: 'string', minLength: 1 },
    },
  },
} as const;

export const registrationSchema = {
  type: 'object',
  required: ['id', 'url', 'as_token', 'hs_token', 'sender_localpart', 'namespaces'],
  properties: {
    id: { type: 'string', minLength: 1 },
    url: { type: ['string', 'null'] },
    as_token: { type: 'string', minLength: 1 },
    hs_token: { type: 'string', minLength: 1 },
    sender_localpart: { type: 'string', minLength: 1 },
    namespaces: {
      type: 'object',
      properties: { users: namespaceList, aliases: namespaceList, rooms: namespaceList },
    },
    rate_limited: { type: 'boolean' },
    receive_ephemeral: { type: 'boolean' },
    'de.sorunome.msc2409.push_ephemeral': { type: 'boolean' },
    push_ephemeral: { type: 'boolean' },
    protocols: { type: ['array', 'null'], items: { type: 'string' } },
    use_appservice_legacy_authorization: { type: 'boolean' },
    'org.matrix.msc3202': { type: 'boolean' },
  },
} as const;

/** The registration file as written, after schema validation. */
export interface RegistrationDocument {
  id: string;
  url: string | null;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  namespaces: { users?: RawRule[]; aliases?: RawRule[]; rooms?: RawRule[] };
  rate_limited?: boolean;
  receive_ephemeral?: boolean;
  'de.sorunome.msc2409.push_ephemeral'?: boolean;
  push_ephemeral?: boolean;
  protocols?: string[] | null;
  /** Also send the hs_token as `?access_token=` (the pre-v1.4 placement older bridge libraries read). */
  use_appservice_legacy_authorization?: boolean;
  /** MSC3202 (encrypted application services): device lists, one-time key counts and fallback key types in transactions. */
  'org.matrix.msc3202'?: boolean;
}

interface RawRule {
  exclusive: boolean;
  regex: string;
}
