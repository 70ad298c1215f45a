import { spawn } from 'node:child_process';
import { freePort, hasRedisServer, waitForPort } from '../lab/redis-cluster.ts';

/**
 * A throwaway redis-server on a free loopback port, with no persistence, for the gate and the
 * bench: they never touch a server that may hold someone's data. Null when Redis is not installed.
 */
export async function startThrowawayRedis(): Promise<{ url: string; stop(): void } | null> {
  if (!hasRedisServer()) return null;
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  if (await waitForPort(port)) return { url: `redis://127.0.0.1:${port}`, stop: () => server.kill() };
  server.kill();
  return null;
}
