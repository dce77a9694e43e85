#!/bin/sh
# Makes the certificates of tests/it/predict_releases.rs with OpenSSL 3 (run in this directory).
set -e
export LC_ALL=C
tmp=$(mktemp -d)
days="-days 36500"
ext="$tmp/ext"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > "$ext.ca"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:ota.example\n' > "$ext.leaf"

key() { # name algorithm-options...
  name=$1; shift
  openssl genpkey "$@" -out "$tmp/$name.key" 2>/dev/null
}
root() { # name
  openssl req -x509 -new -key "$tmp/$1.key" -subj "/CN=$1" -sha256 $days -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
sign() { # name issuer digest extensions [common name, default the name]
  openssl req -new -key "$tmp/$1.key" -subj "/CN=${5:-$1}" -out "$tmp/$1.csr"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$2.pem" -CAkey "$tmp/$2.key" -set_serial 0x$(openssl rand -hex 8) \
    -$3 $days -extfile "$4" -out "$1.pem" 2>/dev/null
}
rsa="-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
p256="-algorithm EC -pkeyopt ec_paramgen_curve:P-256"

key root $rsa; root root
key int $rsa; sign int root sha256 "$ext.ca"
key leaf $p256; sign leaf int sha256 "$ext.leaf"
# The same intermediate key signed with MD5 and with SHA-224 by the root.
cp "$tmp/int.key" "$tmp/int-md5.key"; sign int-md5 root md5 "$ext.ca" int
cp "$tmp/int.key" "$tmp/int-sha224.key"; sign int-sha224 root sha224 "$ext.ca" int
# MD2 and MD4: OpenSSL 3 signs with neither; the SHA-256 intermediate with its signature
# algorithm (inner and outer) renamed md2WithRSAEncryption / md4WithRSAEncryption. No device
# checks the signature: a build without MD2/MD4 cannot parse the certificate at all.
for md in md2:02 md4:03; do
  name=${md%%:*}; byte=${md##*:}
  openssl x509 -in int.pem -outform DER |
    od -An -v -tx1 | tr -d ' \n' |
    sed "s/2a864886f70d01010b/2a864886f70d0101$byte/g" |
    xxd -r -p | openssl x509 -inform DER -out "int-$name.pem"
done
# A secp224r1 intermediate between the RSA root and a P-256 leaf; a secp256k1 root above a
# P-256 intermediate and leaf.
key int-p224 -algorithm EC -pkeyopt ec_paramgen_curve:secp224r1; sign int-p224 root sha256 "$ext.ca"
cp "$tmp/leaf.key" "$tmp/leaf-p224.key"; sign leaf-p224 int-p224 sha256 "$ext.leaf" leaf
key root-k1 -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1; root root-k1
key int-k1 $p256; sign int-k1 root-k1 sha256 "$ext.ca"
cp "$tmp/leaf.key" "$tmp/leaf-k1.key"; sign leaf-k1 int-k1 sha256 "$ext.leaf" leaf
rm -r "$tmp"
