// The application-service registration as the spec defines it (application-service-api, Registration),
// plus the fields real bridges write that the spec does not list yet.

export interface NamespaceRule {
  exclusive: boolean;
  regex: string;
}

export interface RegistrationNamespaces {
  users: NamespaceRule[];
  aliases: NamespaceRule[];
  rooms: NamespaceRule[];
}

/** A validated registration, with defaults filled in and both ephemeral spellings folded into one flag. */
export interface AppServiceRegistration {
  id: string;
  /** Where transactions go; null means the AS wants no traffic. */
  url: string | null;
  asToken: string;
  hsToken: string;
  senderLocalpart: string;
  namespaces: RegistrationNamespaces;
  rateLimited: boolean;
  receiveEphemeral: boolean;
  protocols: string[];
  /**
   * Send the hs_token as the `access_token` query parameter as well as the Authorization header, for
   * application services built on libraries that predate spec v1.4 (registration key
   * `use_appservice_legacy_authorization`, named after Synapse's homeserver-wide option). Absent = false.
   */
  legacyQueryAuth?: boolean;
  /**
   * MSC3202 (registration key `org.matrix.msc3202`, as Synapse reads it): transactions carry the device-list
   * changes, one-time key counts and unused fallback key types the service's users need for encryption.
   */
  msc3202?: boolean;
  /** The file (or other source) it was read from, for error messages and logs. */
  source: string;
}
