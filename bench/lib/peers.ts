/** The alternatives a benchmark compares against: nginx as an SSE reverse proxy, the Portkey gateway. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, start, waitHttp, type Proc } from './procs.js';

export function nginxBinary(): string | undefined {
  for (const bin of ['/usr/sbin/nginx', 'nginx'])
    try {
      execFileSync(bin, ['-v'], { stdio: 'ignore' });
      return bin;
    } catch {
      // next
    }
  return undefined;
}

/** nginx (Debian `nginx-light`) as a plain SSE reverse proxy: `proxy_buffering off`, keep-alive upstream. */
export async function startNginx(
  upstream: string,
): Promise<{ url: string; proc: Proc; pids: () => number[] }> {
  const bin = nginxBinary();
  if (!bin) throw new Error('nginx not found: apt-get install nginx-light');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'llorch-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const u = new URL(upstream);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream engine { server ${u.hostname}:${u.port}; keepalive 512; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 600s;
    }
  }
}
`,
  );
  const proc = start(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
  await waitHttp(`http://127.0.0.1:${port}/health`);
  const pids = (): number[] => {
    try {
      return execFileSync('pgrep', ['-g', String(proc.pid)], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map(Number);
    } catch {
      return [proc.pid];
    }
  };
  return { url: `http://127.0.0.1:${port}`, proc, pids };
}

/** The Portkey AI Gateway (npm `@portkey-ai/gateway`), forced onto loopback. */
export async function startPortkey(): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const proc = start(process.execPath, [
    '--import',
    new URL('./loopback-only.mjs', import.meta.url).pathname,
    'node_modules/@portkey-ai/gateway/build/start-server.js',
    `--port=${port}`,
    '--headless',
  ]);
  await waitHttp(`http://127.0.0.1:${port}/`);
  return { url: `http://127.0.0.1:${port}`, proc };
}

/** Headers that route a Portkey request to an OpenAI-compatible engine. */
export const portkeyHeaders = (engine: string): Record<string, string> => ({
  'x-portkey-provider': 'openai',
  'x-portkey-custom-host': `${engine}/v1`,
  authorization: 'Bearer x',
});
