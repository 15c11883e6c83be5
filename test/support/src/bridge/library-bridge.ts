// A chat platform connected the way Rocket.Chat's Matrix Bridge connects: through a bridge library's
// own objects (AppServiceRegistration, Bridge, Intent), unmodified. Two libraries:
//   rocketchat — @rocket.chat/forked-matrix-appservice-bridge 4.0.2, what Rocket.Chat ships (its
//                matrix-appservice 0.10 reads the hs_token only from ?access_token=);
//   upstream   — matrix-appservice-bridge 12 (its native crypto binding is stubbed in the jest config).
// Everything the library hands to the controller's onEvent / onEphemeralEvent is recorded.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as rocketChatLibrary from '@rocket.chat/forked-matrix-appservice-bridge';
import * as upstreamLibrary from 'matrix-appservice-bridge';
import { stringify } from 'yaml';
import { findFreePort } from '../process';
import { ReceivedEvents } from './received-events';

export type BridgeLibraryName = 'rocketchat' | 'upstream';

export const BRIDGE_LIBRARY_VERSIONS: Record<BridgeLibraryName, string> = {
  rocketchat: '@rocket.chat/forked-matrix-appservice-bridge 4.0.2',
  upstream: 'matrix-appservice-bridge 12.0.1',
};

/** The parts of either library's Intent the scenarios call (both libraries share the shape). */
export interface LibraryIntent {
  readonly userId: string;
  readonly matrixClient: any;
  ensureRegistered(forceRegister?: boolean): Promise<unknown>;
  setDisplayName(name: string): Promise<unknown>;
  setAvatarUrl(url: string): Promise<unknown>;
  getProfileInfo(userId: string, info?: 'avatar_url' | 'displayname', useCache?: boolean): Promise<{ displayname?: string; avatar_url?: string }>;
  createRoom(opts: { createAsClient?: boolean; options: Record<string, unknown> }): Promise<{ room_id: string }>;
  createAlias(alias: string, roomId: string): Promise<unknown>;
  resolveRoom(roomAliasOrId: string): Promise<string>;
  join(roomIdOrAlias: string, viaServers?: string[]): Promise<string>;
  leave(roomId: string, reason?: string): Promise<unknown>;
  invite(roomId: string, target: string): Promise<unknown>;
  kick(roomId: string, target: string, reason?: string): Promise<unknown>;
  ban(roomId: string, target: string, reason?: string): Promise<unknown>;
  unban(roomId: string, target: string): Promise<unknown>;
  sendText(roomId: string, text: string): Promise<{ event_id: string }>;
  sendMessage(roomId: string, content: Record<string, unknown>): Promise<{ event_id: string }>;
  sendEvent(roomId: string, type: string, content: Record<string, unknown>): Promise<{ event_id: string }>;
  sendStateEvent(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<{ event_id: string }>;
  setRoomName(roomId: string, name: string): Promise<unknown>;
  setRoomTopic(roomId: string, topic: string): Promise<unknown>;
  sendTyping(roomId: string, isTyping: boolean): Promise<unknown>;
  sendReadReceipt(roomId: string, eventId: string): Promise<unknown>;
  getStateEvent(roomId: string, eventType: string, stateKey?: string, returnNull?: boolean): Promise<any>;
  roomState(roomId: string, useCache?: boolean): Promise<unknown>;
  getEvent(roomId: string, eventId: string, useCache?: boolean): Promise<any>;
  uploadContent(content: Buffer | string, opts?: { name?: string; type?: string }): Promise<string>;
}

export interface PrepareLibraryBridgeOptions {
  library: BridgeLibraryName;
  /** Registration `id`. */
  id: string;
  /** Virtual users are `@<prefix>_…`; the sender is `@<prefix>_bot`. */
  prefix: string;
  /**
   * Rocket.Chat's shape: catch-all, non-exclusive namespaces (what its admin settings generate).
   * Otherwise exclusive `@<prefix>_.*` users and `#<prefix>_.*` aliases.
   */
  catchAllNamespaces?: boolean;
  /** Adds fedgate's `use_appservice_legacy_authorization: true` to the registration file. */
  legacyAuthorization?: boolean;
  /** The hs_token the bridge checks; defaults to the one in the registration (a mismatch makes it refuse pushes). */
  bridgeHsToken?: string;
}

export class LibraryBridge {
  readonly received = new ReceivedEvents();
  private bridge: any;
  private readonly intents = new Map<string, LibraryIntent>();

  private constructor(
    readonly library: BridgeLibraryName,
    readonly port: number,
    /** The registration as written (the library's own output, plus fedgate's legacy option when asked). */
    readonly registration: Record<string, any>,
    readonly registrationPath: string,
    private readonly directory: string,
    private readonly options: PrepareLibraryBridgeOptions,
  ) {}

  /** Writes the registration file (the homeserver needs it before it starts) and picks the bridge's port. */
  static async prepare(options: PrepareLibraryBridgeOptions): Promise<LibraryBridge> {
    const lib = options.library === 'rocketchat' ? rocketChatLibrary : upstreamLibrary;
    const port = await findFreePort();
    const generateToken = () => lib.AppServiceRegistration.generateToken();
    const namespace = (regex: string, exclusive: boolean) => [{ exclusive, regex }];
    const catchAll = options.catchAllNamespaces ?? false;
    // Built the way Rocket.Chat's bridge builds it: a plain object handed to AppServiceRegistration.fromObject.
    const registration = lib.AppServiceRegistration.fromObject({
      id: options.id,
      hs_token: generateToken(),
      as_token: generateToken(),
      url: `http://127.0.0.1:${port}`,
      sender_localpart: `${options.prefix}_bot`,
      namespaces: {
        users: namespace(catchAll ? '.*' : `@${options.prefix}_.*`, !catchAll),
        rooms: namespace('.*', false),
        aliases: namespace(catchAll ? '.*' : `#${options.prefix}_.*`, !catchAll),
      },
      'de.sorunome.msc2409.push_ephemeral': true,
    } as never);
    registration.setRateLimited(false);
    const output: Record<string, any> = { ...registration.getOutput() };
    if (options.legacyAuthorization) output.use_appservice_legacy_authorization = true;
    const directory = await mkdtemp(path.join(tmpdir(), `fedgate-${options.library}-bridge-`));
    const registrationPath = path.join(directory, 'registration.yaml');
    await writeFile(registrationPath, stringify(output));
    return new LibraryBridge(options.library, port, output, registrationPath, directory, options);
  }

  /** Rewrites the registration file with or without fedgate's legacy option (the operator's fix). */
  async setLegacyAuthorization(enabled: boolean): Promise<void> {
    if (enabled) this.registration.use_appservice_legacy_authorization = true;
    else delete this.registration.use_appservice_legacy_authorization;
    await writeFile(this.registrationPath, stringify(this.registration));
  }

  /** Starts the library's Bridge against the homeserver, listening on the registered URL. */
  async start(homeserver: { homeserverUrl: string; domain: string }): Promise<void> {
    const lib: any = this.library === 'rocketchat' ? rocketChatLibrary : upstreamLibrary;
    const registrationObject = { ...this.registration, hs_token: this.options.bridgeHsToken ?? this.registration.hs_token };
    this.bridge = new lib.Bridge({
      homeserverUrl: homeserver.homeserverUrl,
      domain: homeserver.domain,
      registration: lib.AppServiceRegistration.fromObject(registrationObject),
      disableStores: true,
      // The default escaping rewrites `@u:host:port` to `@u:host` (drops the port); server names with
      // a port need it off (docs/chat-platform.md).
      escapeUserIds: false,
      controller: {
        onEvent: (request: any) => this.received.record('event', request.getData()),
        onEphemeralEvent: (request: any) => this.received.record('ephemeral', request.getData()),
        onLog: () => undefined,
      },
    });
    await this.bridge.run(this.port, undefined, '127.0.0.1');
  }

  /** The library's AppService (HTTP side): the token it checks can be changed there. */
  get appService(): { setHomeserverToken(token: string): void } {
    return this.bridge.appService ?? this.bridge.appservice;
  }

  /** The Intent of a user ID (`@…:domain`), through the library's Bridge.getIntent. */
  intent(userId: string): LibraryIntent {
    let intent = this.intents.get(userId);
    if (!intent) {
      intent = this.bridge.getIntent(userId) as LibraryIntent;
      this.intents.set(userId, intent);
    }
    return intent;
  }

  botIntent(): LibraryIntent {
    return this.bridge.getIntent() as LibraryIntent;
  }

  /** Event IDs the controller was handed more than once (should be none). */
  duplicateEventIds(): string[] {
    const seen = new Set<string>();
    const duplicates: string[] = [];
    for (const event of this.received.events()) {
      if (seen.has(event.event_id)) duplicates.push(event.event_id);
      seen.add(event.event_id);
    }
    return duplicates;
  }

  async stop(): Promise<void> {
    await this.bridge?.close().catch(() => undefined);
    await rm(this.directory, { recursive: true, force: true });
  }
}
