// A second "host" on this machine for partition tests: a network namespace joined to the root
// namespace by a veth pair with a private /30 (10.213.x.y) that exists only on these two veth
// ends, so every packet stays on this machine. Cutting the link (the namespace's end down)
// partitions whatever runs inside from the control plane and from its peers while it stays
// alive; bringing it up heals the partition.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Why partition tests cannot run here, or null when they can (root, `ip netns` works). */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'partition tests need root (network namespaces)';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0)
    return `partition tests need iproute2's "ip netns" (${r.error?.message ?? r.stderr.trim()})`;
  return null;
}

export interface NetnsHost {
  /** The namespace's name, `cube-p-<hex>`. */
  readonly name: string;
  /** The root namespace's address on the link (bind the control plane here). */
  readonly hostAddress: string;
  /** The namespace's address on the link. */
  readonly nsAddress: string;
  /** The argv prefix that runs a program inside the namespace. */
  readonly exec: readonly string[];
  /** Cuts the link: traffic between the namespace and the root namespace fails. */
  partition(): void;
  /** Restores the link. */
  heal(): void;
  /** Removes the veth pair and the namespace (idempotent; every step is tried). */
  destroy(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Addresses of this machine's interfaces, to pick a /30 nobody uses. */
function addressesInUse(): string {
  return spawnSync('ip', ['-o', 'addr'], { encoding: 'utf8' }).stdout;
}

/**
 * Creates a namespace with a veth link to the root namespace: `10.213.a.b+1` on the root side,
 * `10.213.a.b+2` inside, a /30 chosen at random among those not on any interface here.
 */
export function createNetnsHost(): NetnsHost {
  const id = randomBytes(3).toString('hex');
  const name = `cube-p-${id}`;
  // Interface names are at most 15 characters.
  const hostVeth = `cph${id}`;
  const nsVeth = `cpn${id}`;
  const inUse = addressesInUse();
  let base = '';
  for (let tries = 0; tries < 50 && base === ''; tries += 1) {
    const a = randomBytes(1)[0] ?? 0;
    const b = ((randomBytes(1)[0] ?? 0) & 0xfc) % 252;
    const candidate = `10.213.${a}.${b}`;
    if (!inUse.includes(`10.213.${a}.${b + 1}/`) && !inUse.includes(`10.213.${a}.${b + 2}/`))
      base = candidate;
  }
  if (base === '') throw new Error('no free 10.213.x.y/30 for a test network namespace');
  const [a, b, c, d] = base.split('.');
  const hostAddress = `${a}.${b}.${c}.${Number(d) + 1}`;
  const nsAddress = `${a}.${b}.${c}.${Number(d) + 2}`;
  let destroyed = false;
  const host: NetnsHost = {
    name,
    hostAddress,
    nsAddress,
    exec: ['ip', 'netns', 'exec', name],
    partition: () => ip('netns', 'exec', name, 'ip', 'link', 'set', nsVeth, 'down'),
    heal: () => ip('netns', 'exec', name, 'ip', 'link', 'set', nsVeth, 'up'),
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      // Deleting one end deletes the pair; the namespace's end goes with the namespace too.
      spawnSync('ip', ['link', 'del', hostVeth], { stdio: 'ignore' });
      spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    },
  };
  try {
    ip('netns', 'add', name);
    ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth);
    ip('link', 'set', nsVeth, 'netns', name);
    ip('addr', 'add', `${hostAddress}/30`, 'dev', hostVeth);
    ip('link', 'set', hostVeth, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${nsAddress}/30`, 'dev', nsVeth);
    ip('netns', 'exec', name, 'ip', 'link', 'set', nsVeth, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (error) {
    host.destroy();
    throw error;
  }
  return host;
}
