import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';

export interface BridgeRegistrationInput {
  id: string;
  /** Where the homeserver pushes transactions. */
  url: string;
  /**
   * The homeserver's server name; user and alias namespaces are limited to it. Leave it out when
   * the homeserver picks its name at start and needs the registration before (homeservers only
   * apply user namespaces to their own users anyway).
   */
  serverName?: string;
  /** Virtual users are `@<prefix>_…:<serverName>`, bridged aliases `#<prefix>_…:<serverName>`. */
  prefix: string;
  receiveEphemeral?: boolean;
  /** `org.matrix.msc3202: true` (written only when set). */
  msc3202?: boolean;
  /** Random when not given. */
  asToken?: string;
  hsToken?: string;
}

/** The registration fields a homeserver reads, in the spec's YAML spelling. */
export interface BridgeRegistration {
  id: string;
  url: string;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  rate_limited: boolean;
  receive_ephemeral: boolean;
  'de.sorunome.msc2409.push_ephemeral': boolean;
  'org.matrix.msc3202'?: boolean;
  namespaces: {
    users: { exclusive: boolean; regex: string }[];
    aliases: { exclusive: boolean; regex: string }[];
    rooms: { exclusive: boolean; regex: string }[];
  };
}

export function createBridgeRegistration(input: BridgeRegistrationInput): BridgeRegistration {
  const server = input.serverName === undefined ? '.*' : escapeRegex(input.serverName);
  const prefix = escapeRegex(input.prefix);
  const ephemeral = input.receiveEphemeral ?? true;
  return {
    id: input.id,
    url: input.url,
    as_token: input.asToken ?? newToken(),
    hs_token: input.hsToken ?? newToken(),
    sender_localpart: `${input.prefix}_bot`,
    rate_limited: false,
    receive_ephemeral: ephemeral,
    'de.sorunome.msc2409.push_ephemeral': ephemeral,
    ...(input.msc3202 ? { 'org.matrix.msc3202': true } : {}),
    namespaces: {
      users: [{ exclusive: true, regex: `@${prefix}_.*:${server}` }],
      aliases: [{ exclusive: true, regex: `#${prefix}_.*:${server}` }],
      rooms: [],
    },
  };
}

export function registrationYaml(registration: BridgeRegistration): string {
  return stringify(registration);
}

export function newToken(): string {
  return randomBytes(24).toString('hex');
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
