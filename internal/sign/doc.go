// Package sign signs a bundle's FILE.sha256 and checks the signature, in
// cosign's blob-signature format (the base64 of the raw signature, as
// 'cosign sign-blob --output-signature' writes it), so that a site can
// check a bundle with 'cosign verify-blob --key cosign.pub --signature
// FILE.sha256.sig --insecure-ignore-tlog FILE.sha256'. Keys and signatures
// go through the sigstore libraries cosign uses; nothing here is crypto of
// its own.
package sign
