import type { SignerInfo } from './verify-package.js';

/**
 * The certificate a package was signed with, whose end matters while it serves: a hotocr
 * package's signer.pem or an OMS package's chain (a keyless certificate is judged at its log
 * time, so its end does not).
 */
export function signerCertificate(signer: SignerInfo): { subject: string; notAfter: string } | undefined {
  return signer.kind === 'certificate' || signer.kind === 'oms-certificate' ? signer : undefined;
}
