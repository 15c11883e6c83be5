// The policy in force: read and validated when the module starts (a bad file stops the start), then checked
// for changes every `reloadIntervalMs`. A new valid version replaces the old one in one step (one reference);
// a bad one is refused, the old one kept, and the refusal logged and audited with every problem.
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { stat } from 'node:fs/promises';
import { readPolicyFile } from '@fedgate/config';
import { SERVER_IDENTITY, STORE, type ServerIdentity, type Store } from '@fedgate/platform';
import { PolicyError, type CompiledPolicy, type SigningKey } from '@fedgate/protocol';
import { SERVICE_LOGGER } from '@fedgate/service-kit';
import type { Logger } from 'pino';
import { ensurePolicyKey } from './policy-key';
import { PolicyMetrics } from './policy-metrics';
import { POLICY_SERVER_SETTINGS, type PolicyServerSettings } from './policy-server-settings';

export type PolicyReload = { outcome: 'unchanged' | 'applied'; policyVersion: string } | { outcome: 'refused'; policyVersion: string; problems: string[] };

@Injectable()
export class ActivePolicy implements OnModuleInit, OnModuleDestroy {
  private current?: CompiledPolicy;
  private signingKey?: SigningKey;
  private fileStamp = '';
  private timer?: NodeJS.Timeout;
  private reloading?: Promise<PolicyReload>;
  private readonly appliedListeners: Array<(policy: CompiledPolicy) => void> = [];

  constructor(
    @Inject(POLICY_SERVER_SETTINGS) readonly settings: PolicyServerSettings,
    @Inject(STORE) private readonly store: Store,
    @Inject(SERVER_IDENTITY) private readonly identity: ServerIdentity,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    private readonly metrics: PolicyMetrics,
  ) {}

  get enabled(): boolean {
    return this.settings.enabled && this.current !== undefined;
  }

  /** The policy in force (undefined when this server is no policy server). */
  get policy(): CompiledPolicy | undefined {
    return this.current;
  }

  /** Called after a new version comes into force (not at start). */
  onApplied(listener: (policy: CompiledPolicy) => void): void {
    this.appliedListeners.push(listener);
  }

  get key(): SigningKey | undefined {
    return this.signingKey;
  }

  async onModuleInit(): Promise<void> {
    if (!this.settings.enabled) return;
    const file = this.settings.policyFile;
    if (!file) throw new Error('policyServer.policyFile is required when the policy server is enabled');
    this.signingKey = await ensurePolicyKey(this.settings.keyPath, this.identity.allKeys, this.logger);
    this.fileStamp = await this.stampOf(file);
    this.current = await readPolicyFile(file);
    this.logger.info({ file, policyVersion: this.current.policyVersion, rules: this.current.ruleIds.length }, 'policy server: policy loaded');
    this.timer = setInterval(() => void this.reloadIfChanged(), this.settings.reloadIntervalMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Reads the file again if its size or modification time changed. */
  async reloadIfChanged(): Promise<PolicyReload | undefined> {
    const file = this.settings.policyFile;
    if (!file || !this.current) return undefined;
    const stamp = await this.stampOf(file);
    if (stamp === this.fileStamp) return undefined;
    return this.reload();
  }

  /** Reads the file again now; one reload at a time. */
  reload(): Promise<PolicyReload> {
    this.reloading ??= this.readAndApply().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async readAndApply(): Promise<PolicyReload> {
    const file = this.settings.policyFile!;
    const previous = this.current!;
    this.fileStamp = await this.stampOf(file);
    let next: CompiledPolicy;
    try {
      next = await readPolicyFile(file);
    } catch (error) {
      const problems = error instanceof PolicyError ? error.problems : [String(error)];
      this.logger.error({ file, problems, keptPolicyVersion: previous.policyVersion }, 'policy server: new policy refused, the previous one stays in force');
      this.metrics.reloads.inc({ outcome: 'refused' });
      await this.auditReload('rejected', previous.policyVersion, 'policy_invalid', { file, problems });
      return { outcome: 'refused', policyVersion: previous.policyVersion, problems };
    }
    if (next.hash === previous.hash) return { outcome: 'unchanged', policyVersion: previous.policyVersion };
    this.current = next;
    this.metrics.reloads.inc({ outcome: 'applied' });
    this.logger.info({ file, policyVersion: next.policyVersion, previousPolicyVersion: previous.policyVersion }, 'policy server: new policy in force');
    await this.auditReload('ok', next.policyVersion, 'policy_applied', { file, previousPolicyVersion: previous.policyVersion });
    for (const listener of this.appliedListeners) listener(next);
    return { outcome: 'applied', policyVersion: next.policyVersion };
  }

  private async auditReload(outcome: 'ok' | 'rejected', policyVersion: string, reason: string, details: { file: string; problems?: string[]; previousPolicyVersion?: string }): Promise<void> {
    const server = this.identity.serverName;
    await this.store.audit
      .append({ direction: 'in', origin: server, destination: server, method: 'RELOAD', path: details.file, ts: Date.now(), durationMs: 0, status: 0, outcome, reason, decision: 'policy_reload', policyVersion, details })
      .catch((err: unknown) => this.logger.error({ err }, 'could not write the audit record of a policy reload'));
  }

  private async stampOf(file: string): Promise<string> {
    try {
      const s = await stat(file);
      return `${s.size}:${s.mtimeMs}:${s.ino}`;
    } catch (error) {
      return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
    }
  }
}
