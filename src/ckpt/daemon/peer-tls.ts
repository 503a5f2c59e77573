import { readFileSync, statSync } from 'node:fs';
import { CubeError } from '../../core/index.ts';

/**
 * TLS for the checkpoint peer port (optional): every daemon presents a certificate of the
 * cluster's CA and checks its peer's against that CA, both ways. The MAC handshake
 * (peer-auth.ts) still runs inside; TLS adds confidentiality of shard bytes on the wire and
 * keeps a network observer from learning job ids. Replicas are then pushed on the TLS
 * connection (dial-back offers are plain TCP and are not used).
 */
export interface PeerTls {
  /** This node's certificate chain (PEM). Its subjectAltName must name the host peers dial. */
  readonly cert: string;
  /** Its private key (PEM). */
  readonly key: string;
  /** The CA that signed every node's certificate (PEM). */
  readonly ca: string;
}

/** The files of `--ckpt-tls-cert`, `--ckpt-tls-key`, `--ckpt-ca`. */
export interface PeerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CubeError('FILE_NOT_FOUND', `${flag} ${file} cannot be read`, {
      where: { file, field: flag },
      cause,
    });
  }
}

/**
 * Reads the three PEM files; the key file must not be readable by group or others (it would
 * let them impersonate this node).
 */
export function readPeerTls(files: PeerTlsFiles): PeerTls {
  const mode = (() => {
    try {
      return statSync(files.keyFile).mode & 0o777;
    } catch {
      return 0;
    }
  })();
  if ((mode & 0o077) !== 0)
    throw new CubeError(
      'BAD_FLAG',
      `--ckpt-tls-key ${files.keyFile} has mode ${mode.toString(8).padStart(4, '0')}: a private key must be readable by its owner only (chmod 600)`,
      { where: { file: files.keyFile, field: '--ckpt-tls-key' } },
    );
  return {
    cert: readPem(files.certFile, '--ckpt-tls-cert'),
    key: readPem(files.keyFile, '--ckpt-tls-key'),
    ca: readPem(files.caFile, '--ckpt-ca'),
  };
}
