import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CubeError } from '../core/index.ts';
import { newMasterKey } from '../ckpt/daemon/index.ts';
import { writeSecretFileSync } from './private-files.ts';

/**
 * The master key of checkpoint-peer authentication, `<dataDir>/peer-master.key` (32 random
 * bytes, base64url, mode 0600): created atomically on the first start and loaded after, so
 * keys handed out before a restart of the control plane stay valid. Every job attempt's peer
 * keys are derived from it (src/ckpt/daemon/peer-auth.ts); it never leaves this file.
 */
export function loadPeerMasterKey(dataDir: string): Buffer {
  const path = join(dataDir, 'peer-master.key');
  if (!existsSync(path)) {
    writeSecretFileSync(path, `${newMasterKey().toString('base64url')}\n`);
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new CubeError(
      'INVALID_FILE',
      `${path} has mode ${mode.toString(8)}: it holds the checkpoint-peer master key, so only its owner may read it`,
      { where: { file: path }, hint: `chmod 600 ${path}` },
    );
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
  if (key.length !== 32)
    throw new CubeError('INVALID_FILE', `${path} does not hold a 32-byte key (base64url)`, {
      where: { file: path },
      hint: 'remove it to have a new one made (running jobs then restart their checkpoint peers at the next launch)',
    });
  return key;
}
