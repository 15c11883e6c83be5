// homeserver.yaml for a Synapse that federates over loopback with servers certified by the test CA.
// The facts behind each setting are in docs/testing.md ("Synapse as a peer").

export interface SynapseConfigInput {
  serverName: string;
  dataDir: string;
  tlsPort: number;
  tlsBindAddresses: string[];
  httpPort: number;
  tlsCertPath: string;
  tlsKeyPath: string;
  caCertPath: string;
  signingKeyPath: string;
  logConfigPath: string;
  registrationSharedSecret: string;
  macaroonSecretKey: string;
  formSecret: string;
}

const unlimited = { per_second: 10_000, burst_count: 100_000 };

// Rate limits lifted: tests send bursts that a real deployment would throttle.
const rateLimits = {
  rc_message: unlimited,
  rc_registration: unlimited,
  rc_registration_token_validity: unlimited,
  rc_login: { address: unlimited, account: unlimited, failed_attempts: unlimited },
  rc_joins: { local: unlimited, remote: unlimited },
  rc_joins_per_room: unlimited,
  rc_invites: { per_room: unlimited, per_user: unlimited, per_issuer: unlimited },
  rc_3pid_validation: unlimited,
  rc_admin_redaction: unlimited,
  rc_room_creation: unlimited,
  rc_presence: { per_user: unlimited },
  rc_key_requests: unlimited,
  rc_federation: { window_size: 1000, sleep_limit: 100_000, sleep_delay: 0, reject_limit: 100_000, concurrent: 1000 },
};

export function synapseHomeserverConfig(input: SynapseConfigInput): Record<string, unknown> {
  return {
    server_name: input.serverName,
    public_baseurl: `https://${input.serverName}/`,
    pid_file: `${input.dataDir}/homeserver.pid`,
    listeners: [
      {
        port: input.tlsPort,
        bind_addresses: input.tlsBindAddresses,
        type: 'http',
        tls: true,
        x_forwarded: false,
        resources: [{ names: ['client', 'federation'], compress: false }],
      },
      {
        port: input.httpPort,
        bind_addresses: ['127.0.0.1'],
        type: 'http',
        tls: false,
        x_forwarded: false,
        resources: [{ names: ['client'], compress: false }],
      },
    ],
    tls_certificate_path: input.tlsCertPath,
    tls_private_key_path: input.tlsKeyPath,
    // Replaces the OS trust store for outbound federation: only test-CA certificates are accepted.
    federation_custom_ca_list: [input.caCertPath],
    federation_verify_certificates: true,
    // Loopback is blocked for outbound requests by default. Deliberately no
    // federation_ip_range_blacklist: once that is set, ip_range_whitelist stops applying to federation.
    ip_range_whitelist: ['127.0.0.0/8', '::1/128'],
    database: { name: 'sqlite3', args: { database: `${input.dataDir}/homeserver.db` } },
    log_config: input.logConfigPath,
    media_store_path: `${input.dataDir}/media_store`,
    signing_key_path: input.signingKeyPath,
    report_stats: false,
    // Keys are fetched from the origin server itself, never from a notary such as matrix.org.
    trusted_key_servers: [],
    suppress_key_server_warning: true,
    registration_shared_secret: input.registrationSharedSecret,
    enable_registration: false,
    macaroon_secret_key: input.macaroonSecretKey,
    form_secret: input.formSecret,
    presence: { enabled: true },
    enable_metrics: false,
    url_preview_enabled: false,
    ...rateLimits,
  };
}

export function synapseLogConfig(): Record<string, unknown> {
  return {
    version: 1,
    disable_existing_loggers: false,
    formatters: { plain: { format: '%(asctime)s %(levelname)s %(name)s: %(message)s' } },
    handlers: { console: { class: 'logging.StreamHandler', formatter: 'plain', stream: 'ext://sys.stderr' } },
    loggers: { 'synapse.storage.SQL': { level: 'WARNING' }, 'twisted': { level: 'WARNING' } },
    root: { level: 'INFO', handlers: ['console'] },
  };
}
