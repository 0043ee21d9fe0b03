/*
 * tls_pem - PEM blocks grouped into key and certificate chain identities.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"
#include "tls_pem.h"

/* Largest certificate or key file accepted; real chains are a few KiB. */
#define TLS_PEM_FILE_MAX (1024 * 1024)

static const char pem_begin[] = "-----BEGIN ";
static const char pem_end[] = "-----END ";

static int label_is_key(const char *label, size_t len)
{
	static const char *const keys[] = {
		"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i]) == len && memcmp(keys[i], label, len) == 0)
			return 1;
	return 0;
}

static int label_is_cert(const char *label, size_t len)
{
	return len == 11 && memcmp(label, "CERTIFICATE", 11) == 0;
}

static void identity_add_cert(struct tls_identity *id, const char *block,
    size_t len)
{
	size_t old = id->certs_pem ? strlen(id->certs_pem) : 0;

	id->certs_pem = xrealloc(id->certs_pem, old + len + 2);
	memcpy(id->certs_pem + old, block, len);
	id->certs_pem[old + len] = '\n';
	id->certs_pem[old + len + 1] = '\0';
	id->ncerts++;
}

/* Finds the next block in [p, end). Returns 1 with its bounds and label,
 * 0 when no block starts, -1 when one starts but has no END line. */
static int next_block(const char *p, const char *end, const char **start_out,
    const char **stop_out, const char **label_out, size_t *label_len_out)
{
	const char *s = memmem(p, (size_t)(end - p), pem_begin, sizeof(pem_begin) - 1);
	const char *label, *dash, *e, *eol;

	if (s == NULL)
		return 0;
	label = s + sizeof(pem_begin) - 1;
	dash = memmem(label, (size_t)(end - label), "-----", 5);
	if (dash == NULL)
		return -1;
	e = memmem(dash, (size_t)(end - dash), pem_end, sizeof(pem_end) - 1);
	if (e == NULL)
		return -1;
	eol = memchr(e, '\n', (size_t)(end - e));
	*start_out = s;
	*stop_out = eol ? eol : end;
	*label_out = label;
	*label_len_out = (size_t)(dash - label);
	return 1;
}

int tls_pem_split(const char *text, size_t len, const char *origin,
    struct tls_identity **out, char **err_out)
{
	struct tls_identity *ids = NULL;
	size_t count = 0;
	const char *p = text, *end = text + len;
	const char *start, *stop, *label;
	size_t label_len;
	int rc;

	while ((rc = next_block(p, end, &start, &stop, &label, &label_len)) == 1) {
		if (label_is_key(label, label_len)) {
			ids = xrealloc(ids, (count + 1) * sizeof(*ids));
			memset(&ids[count], 0, sizeof(ids[count]));
			ids[count].key_pem = xstrndup(start, (size_t)(stop - start));
			ids[count].origin = xstrdup(origin);
			count++;
		} else if (label_is_cert(label, label_len)) {
			if (count == 0) {
				*err_out = xasprintf("%s: a certificate comes before "
				    "its private key; put the key first", origin);
				goto fail;
			}
			identity_add_cert(&ids[count - 1], start, (size_t)(stop - start));
		}
		p = stop;
	}
	if (rc < 0) {
		*err_out = xasprintf("%s: a PEM block has no END line", origin);
		goto fail;
	}
	if (count == 0) {
		*err_out = xasprintf("%s: no private key found", origin);
		goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		if (ids[i].ncerts == 0) {
			*err_out = xasprintf("%s: private key %zu has no certificate "
			    "after it", origin, i + 1);
			goto fail;
		}
	}
	*out = ids;
	return (int)count;

fail:
	tls_identities_free(&ids, count);
	return -1;
}

static int read_file(const char *path, struct sbuf *out, char **err_out)
{
	FILE *f = fopen(path, "r");
	char buf[8192];
	size_t n;

	if (f == NULL) {
		*err_out = xasprintf("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (sbuf_append(out, buf, n) < 0) {
			*err_out = xasprintf("%s is larger than %d bytes", path,
			    TLS_PEM_FILE_MAX);
			fclose(f);
			return -1;
		}
	}
	if (ferror(f)) {
		*err_out = xasprintf("cannot read %s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	/* Keeps the next file's BEGIN line apart from this file's end. */
	sbuf_putc(out, '\n');
	return 0;
}

int tls_pem_load(char *const *files, size_t nfiles, struct tls_identity **out,
    char **err_out)
{
	struct sbuf text, origin;
	int rc = -1;

	sbuf_init(&text, TLS_PEM_FILE_MAX);
	sbuf_init(&origin, 4096);
	for (size_t i = 0; i < nfiles; i++) {
		if (read_file(files[i], &text, err_out) < 0)
			goto done;
		sbuf_printf(&origin, "%s%s", i ? ", " : "", files[i]);
	}
	rc = tls_pem_split(sbuf_cstr(&text), text.len, sbuf_cstr(&origin),
	    out, err_out);
done:
	/* The buffer held private keys. */
	if (text.data != NULL)
		explicit_bzero(text.data, text.cap);
	sbuf_free(&text);
	sbuf_free(&origin);
	return rc;
}

void tls_identities_free(struct tls_identity **ids, size_t count)
{
	if (*ids == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		struct tls_identity *id = &(*ids)[i];

		if (id->key_pem != NULL)
			explicit_bzero(id->key_pem, strlen(id->key_pem));
		free(id->key_pem);
		free(id->certs_pem);
		free(id->origin);
	}
	free(*ids);
	*ids = NULL;
}
