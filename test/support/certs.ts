// A throw-away CA and server certificate made with the openssl CLI (tests only).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
  otherCaPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

export function makeServerCerts(names: { dns: string[]; ips: string[] }): TestPki {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vpt-pki-'));
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: 'pipe' });
  try {
    for (const ca of ['ca', 'other']) {
      ossl(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=test ${ca} CA`,
        '-keyout',
        `${ca}.key`,
        '-out',
        `${ca}.pem`,
      );
    }
    ossl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${names.dns[0] ?? names.ips[0]}`,
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
    );
    const san = [...names.dns.map((n) => `DNS:${n}`), ...names.ips.map((n) => `IP:${n}`)].join(',');
    fs.writeFileSync(path.join(d, 'ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
    ossl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-out',
      'server.pem',
    );
    ossl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=postgres',
      '-keyout',
      'client.key',
      '-out',
      'client.csr',
    );
    fs.writeFileSync(path.join(d, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
    ossl(
      'x509',
      '-req',
      '-in',
      'client.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'client.cnf',
      '-out',
      'client.pem',
    );
    const r = (f: string) => fs.readFileSync(path.join(d, f), 'utf8');
    return {
      caPem: r('ca.pem'),
      certPem: r('server.pem'),
      keyPem: r('server.key'),
      otherCaPem: r('other.pem'),
      clientCertPem: r('client.pem'),
      clientKeyPem: r('client.key'),
    };
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}
