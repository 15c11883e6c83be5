// A TCP load balancer for tests, as operators put one in front of several federation-ingress replicas: each new
// connection goes to the next backend in turn (round robin); a backend that refuses the connection is skipped
// for the next one. TLS passes through untouched (the replicas hold the certificate).
import net from 'node:net';

export interface Backend {
  host: string;
  port: number;
}

export class TcpBalancer {
  /** Connections handed to each backend, by `host:port`. */
  readonly connections = new Map<string, number>();
  private next = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly backends: Backend[],
  ) {}

  /** Listens on `port` (on `::`, so IPv4 and IPv6 loopback alike) and balances over `backends`. */
  static async start(port: number, backends: Backend[]): Promise<TcpBalancer> {
    const server = net.createServer();
    const balancer = new TcpBalancer(server, port, backends);
    server.on('connection', (client) => balancer.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '::', () => resolve());
    });
    return balancer;
  }

  private accept(client: net.Socket): void {
    this.track(client);
    client.pause();
    this.connect(client, 0);
  }

  private connect(client: net.Socket, tried: number): void {
    if (tried >= this.backends.length || client.destroyed) {
      client.destroy();
      return;
    }
    const backend = this.backends[this.next++ % this.backends.length]!;
    const upstream = net.connect(backend.port, backend.host);
    this.track(upstream);
    let connected = false;
    upstream.on('error', () => {
      // Refused (the replica is down): the next backend; once piped, the client's connection ends with it.
      if (!connected) this.connect(client, tried + 1);
      else client.destroy();
    });
    upstream.once('connect', () => {
      connected = true;
      const key = `${backend.host}:${backend.port}`;
      this.connections.set(key, (this.connections.get(key) ?? 0) + 1);
      client.pipe(upstream).pipe(client);
      client.resume();
      client.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Drops every open connection (a balancer recycling its connections): clients reconnect, to the next backend. */
  cutConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
