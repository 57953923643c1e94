/**
 * A throw-away PKI for TLS tests, made with the openssl command (P-256 keys, 2-day
 * certificates, private keys mode 0600): a CA, leaf certificates with a CN and a DNS
 * subjectAltName, and a second, unrelated CA for "wrong certificate" cases.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed (${r.status}): ${r.stderr || r.error}`);
  }
}

export class Pki {
  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly ca: CertFiles,
  ) {}

  /** A new CA in `dir/name`. */
  static create(dir: string, name = 'ca'): Pki {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    const key = join(d, 'ca.key');
    const cert = join(d, 'ca.crt');
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '2',
        '-subj',
        `/CN=splitnve test ${name}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      d,
    );
    chmodSync(key, 0o600);
    return new Pki(dir, name, { cert, key });
  }

  /** A leaf certificate with subject CN `cn` and subjectAltName DNS:`cn`, signed by this CA. */
  issue(cn: string): CertFiles {
    const d = join(this.dir, this.name);
    const base = join(d, cn.replace(/[^a-zA-Z0-9.-]/g, '_'));
    const key = `${base}.key`;
    const csr = `${base}.csr`;
    const cert = `${base}.crt`;
    const ext = `${base}.ext`;
    openssl(
      [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        csr,
        '-subj',
        `/CN=${cn}`,
      ],
      d,
    );
    writeFileSync(
      ext,
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth,clientAuth',
        `subjectAltName=DNS:${cn}`,
        '',
      ].join('\n'),
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        this.ca.cert,
        '-CAkey',
        this.ca.key,
        '-CAcreateserial',
        '-out',
        cert,
        '-days',
        '2',
        '-extfile',
        ext,
      ],
      d,
    );
    chmodSync(key, 0o600);
    return { cert, key };
  }
}
