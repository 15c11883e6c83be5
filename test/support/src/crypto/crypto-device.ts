// One device's end-to-end encryption done for real by the Rust crypto of matrix-js-sdk (its WebAssembly
// build, @matrix-org/matrix-sdk-crypto-wasm): an OlmMachine whose outgoing requests go to a homeserver's
// client-server API through a transport. The same driver is a Synapse user's device (access token, /sync)
// and a bridge's device for a virtual user on fedgate (as_token, `user_id=` and `device_id=`, to-device
// messages from the AS transactions): the bridge side of issue 13. Not exported from @fedgate/testing, so
// suites that do not use it never load the WebAssembly.
import * as wasm from '@matrix-org/matrix-sdk-crypto-wasm';

/** A client-server call; `path` starts after `/_matrix/client/v3`. Answers the parsed JSON or throws. */
export type ClientCall = (method: string, path: string, body?: unknown) => Promise<any>;

let initialised: Promise<void> | undefined;

const enc = encodeURIComponent;

export class CryptoDevice {
  private constructor(
    readonly userId: string,
    readonly deviceId: string,
    private readonly machine: wasm.OlmMachine,
    private readonly call: ClientCall,
  ) {}

  /** A new device with its keys in memory; `flush()` uploads them. */
  static async create(userId: string, deviceId: string, call: ClientCall): Promise<CryptoDevice> {
    initialised ??= wasm.initAsync();
    await initialised;
    const machine = await wasm.OlmMachine.initialize(new wasm.UserId(userId), new wasm.DeviceId(deviceId));
    const device = new CryptoDevice(userId, deviceId, machine, call);
    await device.flush();
    return device;
  }

  /** The device's ed25519 identity key, as other devices see it. */
  get ed25519(): string {
    return this.machine.identityKeys.ed25519.toBase64();
  }

  /** Sends what the machine wants sent (key uploads, queries, claims, to-device) until it wants nothing more. */
  async flush(): Promise<void> {
    for (let round = 0; round < 10; round++) {
      const requests = await this.machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const request of requests) await this.send(request);
    }
  }

  /** What a sync (or an AS transaction) brought this device: to-device events, device-list changes, key counts. */
  async receive(update: { toDevice?: unknown[]; changed?: string[]; left?: string[]; oneTimeKeyCounts?: Record<string, number>; unusedFallbackKeyTypes?: string[] }): Promise<void> {
    const counts = new Map(Object.entries(update.oneTimeKeyCounts ?? {}));
    const lists = new wasm.DeviceLists((update.changed ?? []).map((u) => new wasm.UserId(u)), (update.left ?? []).map((u) => new wasm.UserId(u)));
    await this.machine.receiveSyncChanges(JSON.stringify(update.toDevice ?? []), lists, counts, new Set(update.unusedFallbackKeyTypes ?? []));
    await this.flush();
  }

  /** The content of an `m.room.encrypted` event for `users`' devices in the room (sharing the room key first). */
  async encrypt(roomId: string, users: string[], type: string, content: Record<string, unknown>): Promise<Record<string, unknown>> {
    // The bindings take ownership of the IDs passed in arrays: new ones for every call.
    const ids = () => users.map((u) => new wasm.UserId(u));
    await this.machine.updateTrackedUsers(ids());
    await this.flush();
    const claim = await this.machine.getMissingSessions(ids());
    if (claim) await this.send(claim);
    for (const request of await this.machine.shareRoomKey(new wasm.RoomId(roomId), ids(), new wasm.EncryptionSettings())) await this.send(request);
    return JSON.parse(await this.machine.encryptRoomEvent(new wasm.RoomId(roomId), type, JSON.stringify(content))) as Record<string, unknown>;
  }

  /** The plaintext event of an `m.room.encrypted` event. */
  async decrypt(event: Record<string, unknown>, roomId: string): Promise<{ type: string; content: Record<string, any>; sender: string }> {
    const decrypted = await this.machine.decryptRoomEvent(JSON.stringify(event), new wasm.RoomId(roomId), new wasm.DecryptionSettings(wasm.TrustRequirement.Untrusted));
    const plain = JSON.parse(decrypted.event) as { type: string; content: Record<string, any> };
    return { ...plain, sender: decrypted.sender.toString() };
  }

  /** The devices of `userId` this device knows (after a key query). */
  async knownDevices(userId: string): Promise<string[]> {
    const devices = await this.machine.getUserDevices(new wasm.UserId(userId));
    return devices.devices().map((d) => d.deviceId.toString()).sort();
  }

  close(): void {
    this.machine.close();
  }

  private async send(request: wasm.OutgoingRequest | wasm.KeysClaimRequest | wasm.ToDeviceRequest): Promise<void> {
    let response: unknown;
    if (request instanceof wasm.KeysUploadRequest) response = await this.call('POST', '/keys/upload', JSON.parse(request.body));
    else if (request instanceof wasm.KeysQueryRequest) response = await this.call('POST', '/keys/query', JSON.parse(request.body));
    else if (request instanceof wasm.KeysClaimRequest) response = await this.call('POST', '/keys/claim', JSON.parse(request.body));
    else if (request instanceof wasm.ToDeviceRequest) response = await this.call('PUT', `/sendToDevice/${enc(request.event_type)}/${enc(request.txn_id)}`, JSON.parse(request.body));
    else if (request instanceof wasm.SignatureUploadRequest) response = await this.call('POST', '/keys/signatures/upload', JSON.parse(request.body));
    else if (request instanceof wasm.RoomMessageRequest) response = await this.call('PUT', `/rooms/${enc(request.room_id)}/send/${enc(request.event_type)}/${enc(request.txn_id)}`, JSON.parse(request.body));
    else response = {};
    await this.machine.markRequestAsSent(request.id!, request.type, JSON.stringify(response));
  }
}

/** A client-server call as a Synapse (or any homeserver) user with an access token. */
export function tokenCall(baseUrl: string, accessToken: string): ClientCall {
  return async (method, path, body) => {
    const res = await fetch(`${baseUrl}/_matrix/client/v3${path}`, {
      method,
      headers: { authorization: `Bearer ${accessToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
}

/** A client-server call as an application service's user and device (MSC4190 / MSC3202 masquerading). */
export function appServiceCall(baseUrl: string, asToken: string, userId: string, deviceId: string): ClientCall {
  return async (method, path, body) => {
    const query = `user_id=${enc(userId)}&device_id=${enc(deviceId)}`;
    const res = await fetch(`${baseUrl}/_matrix/client/v3${path}${path.includes('?') ? '&' : '?'}${query}`, {
      method,
      headers: { authorization: `Bearer ${asToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
}
