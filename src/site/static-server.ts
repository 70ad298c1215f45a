import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.xml': 'application/xml',
  '.txt': 'text/plain; charset=utf-8',
};

export const contentType = (file: string) => TYPES[path.extname(file)] ?? 'application/octet-stream';

export interface RunningServer {
  url: string;
  close: () => Promise<void>;
}

/**
 * The file a static host serves for `pathname`: directory URLs serve their index.html, unknown
 * paths (and paths that climb out of `root`) get 404.html.
 */
export function resolveStatic(root: string, pathname: string): { file: string; status: 200 | 404 } {
  let file = path.join(root, path.normalize(pathname).replace(/^([/\\])+/, ''));
  if (!file.startsWith(root)) file = path.join(root, '404.html');
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  return fs.existsSync(file) ? { file, status: 200 } : { file: path.join(root, '404.html'), status: 404 };
}

/** Listens on localhost only (`port` 0: any free port) and resolves with the origin. */
export async function listenLocal(server: http.Server, port: number): Promise<RunningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Open keep-alive and event-stream connections would hold close() forever.
        server.closeAllConnections();
      }),
  };
}

/**
 * Serves a built site the way a static host does, for the browser tests. Resolves with the
 * origin once listening.
 */
export async function serveStatic(root: string, port = 0): Promise<RunningServer> {
  const server = http.createServer((request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const { file, status } = resolveStatic(root, pathname);
    response.writeHead(status, { 'content-type': contentType(file) });
    fs.createReadStream(file).pipe(response);
  });
  return listenLocal(server, port);
}
