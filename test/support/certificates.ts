// Test-only certificates, made at test time with Debian's openssl: a CA, a server certificate for
// localhost/127.0.0.1, a client certificate, and a second, unrelated CA with its own client certificate.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Certificates {
  readonly ca: Buffer;
  readonly serverCert: Buffer;
  readonly serverKey: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  readonly otherCa: Buffer;
  readonly otherClientCert: Buffer;
  readonly otherClientKey: Buffer;
}

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), "aiaas-certs-"));
  const ssl = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  };
  try {
    const ca = (name: string): void => ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.pem`);
    const leaf = (name: string, signer: string, subject: string, ext: string): void => {
      writeFileSync(join(dir, `${name}.ext`), ext);
      ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${subject}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
      ssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${signer}.pem`, "-CAkey", `${signer}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
    };
    ca("test-ca");
    ca("other-ca");
    leaf("server", "test-ca", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    leaf("client", "test-ca", "test-client", "extendedKeyUsage=clientAuth\n");
    leaf("other-client", "other-ca", "other-client", "extendedKeyUsage=clientAuth\n");
    const read = (f: string): Buffer => readFileSync(join(dir, f));
    return {
      ca: read("test-ca.pem"),
      serverCert: read("server.pem"),
      serverKey: read("server.key"),
      clientCert: read("client.pem"),
      clientKey: read("client.key"),
      otherCa: read("other-ca.pem"),
      otherClientCert: read("other-client.pem"),
      otherClientKey: read("other-client.key"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
