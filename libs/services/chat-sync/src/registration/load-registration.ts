import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import type { AppServiceRegistration } from './registration';
import { registrationSchema, type RegistrationDocument } from './registration-schema';
import { compileNamespaceRegex } from './namespace-matcher';

export class RegistrationError extends Error {
  constructor(
    readonly source: string,
    readonly field: string | null,
    detail: string,
  ) {
    super(field ? `${source}: ${field}: ${detail}` : `${source}: ${detail}`);
    this.name = 'RegistrationError';
  }
}

const validate = new Ajv({ allErrors: true, strict: false }).compile<RegistrationDocument>(registrationSchema);

/** Parses and validates one registration (YAML, so JSON works too). `source` names it in errors. */
export function parseRegistration(text: string, source: string): AppServiceRegistration {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new RegistrationError(source, null, `not valid YAML: ${(err as Error).message}`);
  }
  if (!validate(document)) {
    const first = (validate.errors ?? [])[0];
    throw new RegistrationError(source, fieldOf(first), first?.message ?? 'invalid registration');
  }
  const namespaces = {
    users: document.namespaces.users ?? [],
    aliases: document.namespaces.aliases ?? [],
    rooms: document.namespaces.rooms ?? [],
  };
  for (const kind of ['users', 'aliases', 'rooms'] as const) {
    namespaces[kind].forEach((rule, index) => {
      try {
        compileNamespaceRegex(rule.regex);
      } catch (err) {
        throw new RegistrationError(source, `namespaces.${kind}[${index}].regex`, (err as Error).message);
      }
    });
  }
  if (document.url !== null && !isHttpUrl(document.url)) {
    throw new RegistrationError(source, 'url', `must be an http(s) URL or null, got ${JSON.stringify(document.url)}`);
  }
  return {
    id: document.id,
    url: document.url,
    asToken: document.as_token,
    hsToken: document.hs_token,
    senderLocalpart: document.sender_localpart,
    namespaces,
    rateLimited: document.rate_limited ?? true,
    receiveEphemeral:
      document.receive_ephemeral ?? document['de.sorunome.msc2409.push_ephemeral'] ?? document.push_ephemeral ?? false,
    protocols: document.protocols ?? [],
    legacyQueryAuth: document.use_appservice_legacy_authorization ?? false,
    msc3202: document['org.matrix.msc3202'] ?? false,
    source,
  };
}

export async function loadRegistrationFile(path: string): Promise<AppServiceRegistration> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RegistrationError(path, null, `cannot read: ${(err as Error).message}`);
  }
  return parseRegistration(text, path);
}

function fieldOf(error: ErrorObject | undefined): string | null {
  if (!error) return null;
  const path = error.instancePath
    .split('/')
    .filter(Boolean)
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part.replace(/~1/g, '/').replace(/~0/g, '~')}`))
    .join('')
    .replace(/^\./, '');
  const missing = error.keyword === 'required' ? String((error.params as { missingProperty: string }).missingProperty) : '';
  if (missing) return path ? `${path}.${missing}` : missing;
  return path || null;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
