#!/bin/sh
# Makes a test PKI for TLS tests and the sandbox:
#   scripts/make-test-certs.sh DIR HOSTNAME [SNI_NAME]
# In DIR: root CA (ca.pem, ca.key), intermediate CA (int.pem, int.key),
# RSA and ECDSA server certificates for HOSTNAME, and an RSA certificate
# for SNI_NAME (default sni.HOSTNAME), all signed by the intermediate.
# For each server certificate NAME (server, server-ec, sni) it writes
# NAME.key, NAME.pem (leaf only) and NAME-chain.pem (key, leaf,
# intermediate), the layout smtpd_tls_chain_files expects. Keys are mode
# 0600. Validity: DAYS from the environment, default 30.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 DIR HOSTNAME [SNI_NAME]" >&2
	exit 2
fi
dir=$1
host=$2
sni=${3:-sni.$host}
days=${DAYS:-30}

mkdir -p "$dir"
cd "$dir"
umask 077

ext_ca='basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash'
ext_int="$ext_ca
basicConstraints=critical,CA:TRUE,pathlen:0
authorityKeyIdentifier=keyid"

# leaf_ext NAME: extensions of a server certificate for NAME.
leaf_ext() {
	printf '%s\n' "basicConstraints=critical,CA:FALSE" \
	    "keyUsage=critical,digitalSignature,keyEncipherment" \
	    "extendedKeyUsage=serverAuth,clientAuth" \
	    "subjectAltName=DNS:$1" \
	    "authorityKeyIdentifier=keyid"
}

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
    -days "$days" -subj "/O=Postern Test/CN=Postern Test Root CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey rsa:2048 -nodes -keyout int.key -out int.csr \
    -subj "/O=Postern Test/CN=Postern Test Intermediate CA" 2>/dev/null
printf '%s\n' "$ext_int" >int.ext
openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days "$days" -extfile int.ext -out int.pem 2>/dev/null

# leaf NAME HOST KEYSPEC: key, certificate and chain file for HOST.
leaf() {
	name=$1
	if [ "$3" = ec ]; then
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		    -out "$name.key" 2>/dev/null
	else
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
		    -out "$name.key" 2>/dev/null
	fi
	openssl req -new -key "$name.key" -out "$name.csr" \
	    -subj "/O=Postern Test/CN=$2" 2>/dev/null
	leaf_ext "$2" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA int.pem -CAkey int.key \
	    -CAcreateserial -days "$days" -extfile "$name.ext" \
	    -out "$name.pem" 2>/dev/null
	cat "$name.key" "$name.pem" int.pem >"$name-chain.pem"
}

leaf server "$host" rsa
leaf server-ec "$host" ec
leaf sni "$sni" rsa

rm -f ./*.csr ./*.ext ./*.srl
chmod 0600 ./*.key ./*-chain.pem
chmod 0644 ca.pem int.pem server.pem server-ec.pem sni.pem
echo "test certificates for $host and $sni in $dir"
