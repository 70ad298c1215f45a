/**
 * A throwaway Redis Cluster on loopback, for `--cluster` with no address and for the gate: three
 * primaries (and replicas if asked) started from the `redis-server` binary on free ports, with
 * nothing persisted, and their files in one temporary folder that `stop()` removes once every
 * process has exited. It never touches a server someone else started.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

const SLOTS = 16_384;

/**
 * The slots each primary serves, split as `redis-cli --cluster create` splits them (3 primaries:
 * 0-5460, 5461-10922, 10923-16383). The kit's cluster rules on the mock place slots the same way.
 */
export function slotRanges(primaries: number): Array<[number, number]> {
  const perPrimary = SLOTS / primaries;
  const ranges: Array<[number, number]> = [];
  let first = 0;
  for (let i = 0; i < primaries; i++) {
    const last = i === primaries - 1 ? SLOTS - 1 : Math.max(first, Math.round(perPrimary * (i + 1) - 1));
    ranges.push([first, last]);
    first = last + 1;
  }
  return ranges;
}

/** A port nothing listens on now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Resolves once something accepts connections on the port, false after `tries` × 100 ms. */
export async function waitForPort(port: number, tries = 50): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net
        .connect(port, '127.0.0.1', () => (socket.end(), resolve(true)))
        .on('error', () => resolve(false));
    });
    if (up) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface ThrowawayCluster {
  /** A seed address, redis://127.0.0.1:<port> of the first primary: enough for a Cluster client. */
  url: string;
  ports: number[];
  /** Kills every node and removes the folder; safe to call twice. */
  stop(): Promise<void>;
  /** The same, synchronously, for process exit handlers. */
  stopNow(): void;
}

/**
 * Starts the cluster and resolves once every node says `cluster_state:ok` and knows all the
 * others. Throws with the reason (and stops what it started) when redis-server is missing or a
 * node does not come up.
 */
export async function startThrowawayCluster({
  primaries = 3,
  replicas = 0,
}: {
  primaries?: number;
  replicas?: number;
} = {}): Promise<ThrowawayCluster> {
  if (!hasRedisServer())
    throw new Error(
      'redis-server is not installed, so no local cluster can be started. Install Redis (Debian: apt-get install redis-server), or give an existing cluster: --cluster redis://host:port',
    );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdl-cluster-'));
  const nodes: Array<{ port: number; bus: number; process: ChildProcess }> = [];
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    for (const node of nodes) node.process.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const stop = async () => {
    if (stopped) return;
    await Promise.all(
      nodes.map(
        (node) =>
          new Promise<void>((resolve) => {
            if (node.process.exitCode !== null || node.process.signalCode !== null) return resolve();
            node.process.once('exit', () => resolve());
            node.process.kill('SIGKILL');
          }),
      ),
    );
    stopNow();
  };
  const clients: Redis[] = [];
  try {
    for (let i = 0; i < primaries * (1 + replicas); i++) {
      const port = await freePort();
      // The cluster bus gets a port of its own (Redis 7's cluster-port), or it would be port
      // + 10000, which may be taken or past 65535.
      let bus = await freePort();
      while (bus === port) bus = await freePort();
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(bus),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '5000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ], // prettier-ignore
        { stdio: 'ignore' },
      );
      // Nodes never keep the runner alive: its exit handler (stopNow) ends them.
      child.unref();
      nodes.push({ port, bus, process: child });
    }
    for (const node of nodes)
      if (!(await waitForPort(node.port))) throw new Error(`redis-server did not start on port ${node.port}`);
    for (const node of nodes) clients.push(new Redis(node.port, '127.0.0.1', { maxRetriesPerRequest: 1 }));

    for (const [i, [first, last]] of slotRanges(primaries).entries())
      await clients[i]!.call('CLUSTER', 'ADDSLOTSRANGE', first, last);
    for (const node of nodes.slice(1)) await clients[0]!.call('CLUSTER', 'MEET', '127.0.0.1', node.port, node.bus);
    await until(
      async () => (await Promise.all(clients.map(knownNodes))).every((known) => known === nodes.length),
      'the nodes to meet',
    );
    for (let r = primaries; r < nodes.length; r++) {
      const primaryId = String(await clients[r % primaries]!.call('CLUSTER', 'MYID'));
      await clients[r]!.call('CLUSTER', 'REPLICATE', primaryId);
    }
    await until(
      async () => (await Promise.all(clients.map((client) => client.call('CLUSTER', 'INFO')))).every(isOk),
      'cluster_state:ok on every node',
    );
  } catch (error) {
    for (const client of clients) client.disconnect();
    await stop();
    throw error;
  }
  for (const client of clients) client.disconnect();
  return { url: `redis://127.0.0.1:${nodes[0]!.port}`, ports: nodes.map((node) => node.port), stop, stopNow };
}

async function knownNodes(client: Redis): Promise<number> {
  const nodes = String(await client.call('CLUSTER', 'NODES'));
  return nodes.split('\n').filter((line) => line.trim() && !line.includes('handshake')).length;
}

function isOk(info: unknown): boolean {
  return /cluster_state:ok/.test(String(info));
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`The local Redis Cluster did not come up: no ${what} after ${timeoutMs / 1000} s`);
}
