// Starts `permit-sync local` on free ports for the contract tests.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export async function startLocalPermit() {
  const bin = process.env.PERMIT_SYNC_BIN || path.join(repo, 'target', 'debug', 'permit-sync');
  const apiKey = `permit_key_${randomBytes(16).toString('hex')}`;
  // The key goes through the environment, not the command line (visible in `ps`).
  const proc = spawn(bin, ['local', '--api-addr', '127.0.0.1:0', '--pdp-addr', '127.0.0.1:0'], {
    env: { ...process.env, PERMIT_LOCAL_API_KEY: apiKey },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const urls = await new Promise((resolve, reject) => {
    const found = {};
    const lines = createInterface({ input: proc.stdout });
    lines.on('line', (line) => {
      const [label, value] = line.trim().split(/\s+/, 2);
      if (label === 'API:') found.apiUrl = value;
      if (label === 'PDP:') found.pdpUrl = value;
      if (line.startsWith('press Ctrl-C')) resolve(found);
    });
    proc.on('exit', (code) => reject(new Error(`permit-sync local exited with ${code}`)));
    proc.on('error', reject);
  });
  return {
    ...urls,
    apiKey,
    stop: () =>
      new Promise((resolve) => {
        proc.once('exit', resolve);
        proc.kill('SIGTERM');
      }),
  };
}
