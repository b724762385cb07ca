// A TCP load balancer in front of several gateways, as an operator would put one (HAProxy, a cloud
// balancer): each new connection goes to the next live backend in turn; a backend that refuses or dies
// drops its connections, and the client reconnects, to whichever backend comes next.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpBalancer {
  private readonly backends: number[] = [];
  private next = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<TcpBalancer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const balancer = new TcpBalancer(server, (server.address() as { port: number }).port);
    server.on('connection', (socket) => balancer.route(socket));
    return balancer;
  }

  add(port: number): void {
    this.backends.push(port);
  }

  remove(port: number): void {
    const i = this.backends.indexOf(port);
    if (i >= 0) this.backends.splice(i, 1);
  }

  private route(client: Socket): void {
    if (this.backends.length === 0) return void client.destroy();
    const port = this.backends[this.next++ % this.backends.length];
    const upstream = connect(port, '127.0.0.1');
    this.sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
