import { once } from 'node:events';
import net from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that a test can break in two ways:
 * - `down()`: the database is gone — new connections are refused, open ones are cut. `up()`
 *   listens on the same port again.
 * - `partition()`: the network stops carrying bytes — connections stay open and new ones are
 *   accepted, but nothing passes in either direction until `up()`, when everything held back
 *   flows again (as TCP retransmission would deliver it after a route comes back).
 */
export class TcpProxy {
  readonly #target: { host: string; port: number };
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Connections accepted during a partition, connected upstream when it ends. */
  readonly #waiting = new Set<net.Socket>();
  #port = 0;
  #listening = false;
  #partitioned = false;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** The port clients connect to (fixed after the first `up()`). */
  get port(): number {
    return this.#port;
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.#port);
    return parsed.toString();
  }

  /** Accepts and forwards (again): ends an outage or a partition. */
  async up(): Promise<void> {
    if (this.#partitioned) {
      this.#partitioned = false;
      for (const socket of this.#sockets) socket.resume();
      for (const client of this.#waiting) this.#connect(client);
      this.#waiting.clear();
    }
    if (this.#listening) return;
    this.#server.listen(this.#port, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#port = (this.#server.address() as net.AddressInfo).port;
    this.#listening = true;
  }

  /** Refuses new connections and cuts the open ones. */
  async down(): Promise<void> {
    this.#partitioned = false;
    this.#waiting.clear();
    if (!this.#listening) return;
    this.#listening = false;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** Stops every byte in both directions, without closing anything, until `up()`. */
  partition(): void {
    this.#partitioned = true;
    for (const socket of this.#sockets) socket.pause();
  }

  #accept(client: net.Socket): void {
    this.accepted += 1;
    this.#track(client);
    if (this.#partitioned) {
      client.pause();
      this.#waiting.add(client);
      return;
    }
    this.#connect(client);
  }

  #connect(client: net.Socket): void {
    if (client.destroyed) return;
    const upstream = net.connect(this.#target.port, this.#target.host);
    this.#track(upstream);
    const pair = [client, upstream];
    for (const socket of pair) socket.on('close', () => pair.forEach((s) => s.destroy()));
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.resume();
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#waiting.delete(socket);
    });
    socket.on('error', () => undefined);
  }
}
