import { open, readFile, rename, rm } from 'node:fs/promises';
import { z } from 'zod';

const credentialFileSchema = z.object({
  format: z.literal('cube.agent-credential/1'),
  server: z.string(),
  name: z.string(),
  nodeId: z.string().min(1),
  credential: z.string().min(1),
});
/** What `<data-dir>/credential.json` holds: the node's identity at one control plane. */
export type StoredCredential = z.infer<typeof credentialFileSchema>;

/** The stored credential, or null when there is none or it cannot be read. */
export async function loadCredential(path: string): Promise<StoredCredential | null> {
  try {
    return credentialFileSchema.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return null;
  }
}

/** Stores the credential with mode 0600 (written to a temp file, fsynced, renamed). */
export async function saveCredential(
  path: string,
  value: Omit<StoredCredential, 'format'>,
): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(
      `${JSON.stringify({ format: 'cube.agent-credential/1', ...value }, null, 2)}\n`,
    );
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}

export async function removeCredential(path: string): Promise<void> {
  await rm(path, { force: true });
}
