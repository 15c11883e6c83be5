// Worker thread of a PeerShard: starts its simulated homeservers and answers the main thread's commands.
import { parentPort, workerData } from 'node:worker_threads';
import { arrivalEventIds, type ShardCommand, type ShardData, type ShardMessage } from './peer-shard';
import { SimulatedHomeserver } from './simulated-homeserver';

async function main(): Promise<void> {
  const { ca, certificate, servers: count } = workerData as ShardData;
  const post = (message: ShardMessage) => parentPort!.postMessage(message);
  const servers: SimulatedHomeserver[] = [];
  for (let i = 0; i < count; i++) {
    const index = i;
    const sim = await SimulatedHomeserver.start(ca, {
      certificate,
      keepTransactions: false,
      // Each /send reported as it arrives, its event IDs computed here rather than on the main thread.
      onReceived: (arrival) => post({ type: 'received', index, arrival: arrival && { ...arrival, eventIds: arrivalEventIds(arrival.pdus), pdus: [] } }),
    });
    sim.wire.keepAliveTimeoutMs = 60_000;
    servers.push(sim);
  }
  parentPort!.on('message', (command: ShardCommand) => {
    void (async () => {
      switch (command.op) {
        case 'keep':
          for (const sim of servers) sim.keepTransactions = command.value;
          return;
        case 'forget':
          for (const sim of servers) sim.wire.forgetTlsSessions();
          return;
        case 'close-idle':
          for (const sim of servers) sim.wire.closeIdleConnections();
          return;
        case 'open': {
          let open = 0;
          for (const sim of servers) open += await sim.wire.openConnections();
          post({ type: 'answer', id: command.id, value: open });
          return;
        }
        case 'sign':
          post({ type: 'answer', id: command.id, value: servers[command.index]!.wire.evil.sign(command.fields, command.roomVersion) });
          return;
        case 'stop':
          await Promise.all(servers.map((sim) => sim.stop()));
          post({ type: 'answer', id: command.id, value: true });
          return;
      }
    })();
  });
  post({ type: 'ready', names: servers.map((sim) => sim.name) });
}

void main();
