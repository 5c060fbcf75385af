// `shardgrid start --resp-port`: the member serves RESP, with the password from a file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

describe('shardgrid start --resp-port', () => {
  it('serves redis-cli with the password of --resp-password-file, and refuses clients without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-resp-'));
    const pwFile = join(dir, 'resp.password');
    writeFileSync(pwFile, 'resp-password-from-a-file\n', { mode: 0o600 });
    const proc = spawn(process.execPath, [CLI, 'start', '--port', '0', '--workers', '1', '--memory', '32MB', '--resp-port', '0', '--resp-password-file', pwFile], {
      env: { ...process.env, SHARDGRID_SECRET: 'cli-resp-test-secret-0123456789ab' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no resp line')), 30_000);
        createInterface({ input: proc.stdout! }).on('line', (l) => {
          const m = /^resp listening on 127\.0\.0\.1:(\d+)$/.exec(l);
          if (m !== null) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
        proc.once('exit', () => reject(new Error('member exited')));
      });
      expect(await cli(port, ['PING'])).toBe('NOAUTH Authentication required.');
      expect(await cli(port, ['--no-auth-warning', '-a', 'wrong', 'PING'])).toBe('NOAUTH Authentication required.');
      // the password reaches redis-cli through its environment, not argv
      const ok = await new Promise<string>((resolve) => {
        const p = spawn('redis-cli', ['-p', String(port), 'SET', 'x', '1'], { env: { ...process.env, REDISCLI_AUTH: 'resp-password-from-a-file' } });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.on('close', () => resolve(out.trim()));
      });
      expect(ok).toBe('OK');
    } finally {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
