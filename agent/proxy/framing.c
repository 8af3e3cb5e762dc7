// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/framing.h: a byte-at-a-time recogniser of
 * RFC 9112's message grammar, strict where two parsers could disagree on a
 * message's end (request smuggling, response queue poisoning). It keeps a
 * few dozen bytes of state and never looks back, so it frames bytes as they
 * arrive in any pieces. Bodies of known length are skipped, not scanned.
 */
#include <errno.h>
#include <string.h>

#include "proxy/framing.h"

enum state {
	ST_METHOD,		/* request-line = method SP request-target SP HTTP-version */
	ST_TARGET,
	ST_REQ_VERSION,		/* "HTTP/1." DIGIT, @sub bytes matched */
	ST_RESP_VERSION,	/* status-line = HTTP-version SP 3DIGIT [SP reason] */
	ST_STATUS,		/* @sub digits read */
	ST_REASON,
	ST_LINE_LF,		/* CR of the start line seen */
	ST_FIELD_START,		/* a field line or the empty line (head or trailers) */
	ST_NAME,
	ST_VALUE,
	ST_FIELD_LF,
	ST_HEAD_END_LF,		/* CR of the empty line seen */
	ST_BODY_CL,
	ST_BODY_EOF,
	ST_CHUNK_SIZE,		/* @sub: a digit was read */
	ST_EXT_BWS,		/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ) */
	ST_EXT_NAME_START,
	ST_EXT_NAME,
	ST_EXT_NAME_WS,
	ST_EXT_VAL_START,
	ST_EXT_VAL_TOKEN,
	ST_EXT_VAL_QUOTED,
	ST_EXT_QPAIR,
	ST_EXT_AFTER_QUOTE,
	ST_CHUNK_LF,
	ST_DATA,
	ST_DATA_CR,
	ST_DATA_LF,
	ST_DONE,
};

enum hdr {
	HDR_OTHER,
	HDR_CONTENT_LENGTH,
	HDR_TRANSFER_ENCODING,
};

static const char version[] = "HTTP/1.";

/* RFC 9110 5.6.2 tchar, by byte: every byte of a field name is looked up. */
static const bool tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
	['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static bool is_tchar(unsigned char ch)
{
	return tchar[ch];
}

static bool is_vchar(unsigned char ch)
{
	return ch >= 0x21 && ch <= 0x7e;
}

/* field-vchar (VCHAR / obs-text), the bytes a field value may hold besides
 * SP and HTAB. NUL, CR, LF and the other controls are refused: RFC 9110 5.5
 * lets a recipient reject them, and some servers end a line at a bare CR.
 */
static bool is_field_vchar(unsigned char ch)
{
	return is_vchar(ch) || ch >= 0x80;
}

static bool is_ws(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

bool framing_status_bodyless(int status)
{
	return (status >= 100 && status < 200) || status == 204 || status == 304;
}

void framing_init(struct framing *f, enum framing_kind kind)
{
	memset(f, 0, sizeof(*f));
	f->kind = (uint8_t)kind;
	f->state = kind == FRAMING_REQUEST ? ST_METHOD : ST_RESP_VERSION;
}

static void field_begin(struct framing *f)
{
	f->name_len = 0;
	f->val_len = 0;
	f->val_ws = 0;
	f->val_long = false;
	f->hdr = HDR_OTHER;
}

/* The name ended at its colon: is it one of the two that frame a message? */
static void name_end(struct framing *f)
{
	if (f->head_done)
		return;		/* a trailer: it frames nothing */
	if (f->name_len == 14 && !memcmp(f->name, "content-length", 14))
		f->hdr = HDR_CONTENT_LENGTH;
	else if (f->name_len == 17 && !memcmp(f->name, "transfer-encoding", 17))
		f->hdr = HDR_TRANSFER_ENCODING;
}

static void value_byte(struct framing *f, unsigned char ch)
{
	if (f->hdr == HDR_OTHER)
		return;
	if (is_ws(ch)) {
		/* OWS around the value is not part of it; inside, it is kept. */
		if (f->val_len)
			f->val_ws++;
		return;
	}
	if ((size_t)f->val_len + f->val_ws + 1 > sizeof(f->val)) {
		f->val_long = true;
		return;
	}
	memset(f->val + f->val_len, ' ', f->val_ws);
	f->val_len += f->val_ws;
	f->val_ws = 0;
	f->val[f->val_len++] = (char)ch;
}

/* A framing header's line is complete. 0 or -EBADMSG. */
static int field_end(struct framing *f)
{
	uint64_t v = 0;

	switch (f->hdr) {
	case HDR_OTHER:
		return 0;
	case HDR_CONTENT_LENGTH:
		/* Content-Length = 1*DIGIT: no sign, no inner space, no list. A
		 * second one is refused even when equal: folding it would mean
		 * rewriting the bytes we forward, and http-parser 2.9 refuses it.
		 * Eighteen digits keep the value far from overflow.
		 */
		if (f->has_cl || f->val_long || !f->val_len || f->val_len > 18)
			return -EBADMSG;
		for (size_t i = 0; i < f->val_len; i++) {
			if (f->val[i] < '0' || f->val[i] > '9')
				return -EBADMSG;
			v = v * 10 + (uint64_t)(f->val[i] - '0');
		}
		f->has_cl = true;
		f->content_length = v;
		return 0;
	case HDR_TRANSFER_ENCODING:
		/* Only "chunked", alone and once: we forward bodies as they are,
		 * so a coding we cannot frame (or a list we might read
		 * differently from the server) is refused.
		 */
		if (f->has_te || f->val_long || f->val_len != 7 || strncasecmp(f->val, "chunked", 7))
			return -EBADMSG;
		f->has_te = true;
		return 0;
	}
	return -EBADMSG;
}

/* The empty line after a head (or after trailers). 0 or -EBADMSG. */
static int head_end(struct framing *f)
{
	if (f->head_done) {
		f->state = ST_DONE;	/* the trailers' end */
		return 0;
	}
	/* RFC 9112 6.1, 6.3: both lengths is a smuggling attempt, and an
	 * HTTP/1.0 message cannot be chunked: refuse rather than pick one.
	 */
	if (f->has_te && (f->has_cl || f->http10))
		return -EBADMSG;
	if (f->kind == FRAMING_RESPONSE) {
		if (f->status == 101)
			return -EBADMSG;	/* a switch nobody asked for: upgrades never get here */
		if (f->status < 200) {
			/* Interim: the final head follows, from its status line. */
			f->interims++;
			f->has_cl = f->has_te = f->http10 = false;
			f->status = 0;
			f->sub = 0;
			f->state = ST_RESP_VERSION;
			return 0;
		}
		f->head_done = true;
		if (framing_status_bodyless(f->status) || f->req_head) {
			f->state = ST_DONE;
		} else if (f->has_te) {
			f->state = ST_CHUNK_SIZE;
		} else if (f->has_cl) {
			f->remaining = f->content_length;
			f->state = f->remaining ? ST_BODY_CL : ST_DONE;
		} else {
			f->until_eof = true;
			f->state = ST_BODY_EOF;
		}
		return 0;
	}
	f->head_done = true;
	if (f->connect) {
		/* What follows CONNECT's head is the tunnel: a length on it could
		 * only be read two ways.
		 */
		if (f->has_cl || f->has_te)
			return -EBADMSG;
		f->state = ST_DONE;
	} else if (f->has_te) {
		f->state = ST_CHUNK_SIZE;
	} else if (f->has_cl && f->content_length) {
		f->remaining = f->content_length;
		f->state = ST_BODY_CL;
	} else {
		f->state = ST_DONE;
	}
	return 0;
}

/* One byte of a head, a chunk line or trailers. 0 or -EBADMSG. */
static int step(struct framing *f, unsigned char ch)
{
	switch ((enum state)f->state) {
	case ST_METHOD:
		if (is_tchar(ch)) {
			/* "CONNECT" is 7 bytes: @sub counts matched ones. */
			if (f->sub < 7 && ch == (unsigned char)"CONNECT"[f->sub])
				f->sub++;
			else
				f->sub = 8;
			return 0;
		}
		if (ch != ' ' || !f->sub)
			return -EBADMSG;
		f->connect = f->sub == 7;
		f->sub = 0;
		f->state = ST_TARGET;
		return 0;
	case ST_TARGET:
		if (is_vchar(ch)) {
			f->sub = 1;
			return 0;
		}
		if (ch != ' ' || !f->sub)
			return -EBADMSG;
		f->sub = 0;
		f->state = ST_REQ_VERSION;
		return 0;
	case ST_REQ_VERSION:
	case ST_RESP_VERSION:
		if (f->sub < sizeof(version) - 1) {
			if (ch != (unsigned char)version[f->sub])
				return -EBADMSG;
			f->sub++;
			return 0;
		}
		if (f->sub == sizeof(version) - 1) {
			if (ch != '0' && ch != '1')
				return -EBADMSG;
			f->http = true;
			f->http10 = ch == '0';
			f->sub++;
			return 0;
		}
		if (f->state == ST_REQ_VERSION) {
			if (ch != '\r')
				return -EBADMSG;
			f->state = ST_LINE_LF;
			return 0;
		}
		if (ch != ' ')
			return -EBADMSG;
		f->sub = 0;
		f->state = ST_STATUS;
		return 0;
	case ST_STATUS:
		if (f->sub < 3) {
			if (ch < '0' || ch > '9' || (!f->sub && ch == '0'))
				return -EBADMSG;
			f->status = f->status * 10 + (ch - '0');
			f->sub++;
			return 0;
		}
		/* The reason phrase is optional, its SP too in practice. */
		if (ch == ' ') {
			f->state = ST_REASON;
			return 0;
		}
		if (ch != '\r')
			return -EBADMSG;
		f->state = ST_LINE_LF;
		return 0;
	case ST_REASON:
		if (is_ws(ch) || is_field_vchar(ch))
			return 0;
		if (ch != '\r')
			return -EBADMSG;
		f->state = ST_LINE_LF;
		return 0;
	case ST_LINE_LF:
	case ST_FIELD_LF:
		if (ch != '\n')
			return -EBADMSG;	/* a bare CR */
		if (f->state == ST_FIELD_LF && field_end(f))
			return -EBADMSG;
		f->state = ST_FIELD_START;
		return 0;
	case ST_FIELD_START:
		if (ch == '\r') {
			f->state = ST_HEAD_END_LF;
			return 0;
		}
		/* A line starting with SP or HTAB is obs-fold (RFC 9112 5.2):
		 * refused, as are a bare LF and anything but a token.
		 */
		if (!is_tchar(ch))
			return -EBADMSG;
		field_begin(f);
		f->state = ST_NAME;
		/* fall through */
	case ST_NAME:
		if (is_tchar(ch)) {
			if (f->name_len < sizeof(f->name))
				f->name[f->name_len] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
			if (f->name_len < UINT8_MAX)
				f->name_len++;
			return 0;
		}
		/* No whitespace between name and colon (RFC 9112 5.1). */
		if (ch != ':')
			return -EBADMSG;
		name_end(f);
		f->state = ST_VALUE;
		return 0;
	case ST_VALUE:
		if (ch == '\r') {
			f->state = ST_FIELD_LF;
			return 0;
		}
		if (!is_ws(ch) && !is_field_vchar(ch))
			return -EBADMSG;
		value_byte(f, ch);
		return 0;
	case ST_HEAD_END_LF:
		if (ch != '\n')
			return -EBADMSG;
		return head_end(f);
	case ST_CHUNK_SIZE: {
		int d = hexval(ch);

		if (d >= 0) {
			/* Stay below 2^63: no wrap, and no length http-parser
			 * would count differently.
			 */
			if (f->remaining >> 59)
				return -EBADMSG;
			f->remaining = f->remaining << 4 | (uint64_t)d;
			f->sub = 1;
			return 0;
		}
		if (!f->sub)
			return -EBADMSG;
		if (ch == ';')
			f->state = ST_EXT_NAME_START;
		else if (is_ws(ch))
			f->state = ST_EXT_BWS;
		else if (ch == '\r')
			f->state = ST_CHUNK_LF;
		else
			return -EBADMSG;
		return 0;
	}
	case ST_EXT_BWS:
		if (is_ws(ch))
			return 0;
		if (ch != ';')
			return -EBADMSG;
		f->state = ST_EXT_NAME_START;
		return 0;
	case ST_EXT_NAME_START:
		if (is_ws(ch))
			return 0;
		if (!is_tchar(ch))
			return -EBADMSG;
		f->state = ST_EXT_NAME;
		return 0;
	case ST_EXT_NAME:
	case ST_EXT_NAME_WS:
		if (is_tchar(ch) && f->state == ST_EXT_NAME)
			return 0;
		if (is_ws(ch))
			f->state = ST_EXT_NAME_WS;
		else if (ch == '=')
			f->state = ST_EXT_VAL_START;
		else if (ch == ';')
			f->state = ST_EXT_NAME_START;
		else if (ch == '\r' && f->state == ST_EXT_NAME)
			f->state = ST_CHUNK_LF;
		else
			return -EBADMSG;
		return 0;
	case ST_EXT_VAL_START:
		if (is_ws(ch))
			return 0;
		if (ch == '"')
			f->state = ST_EXT_VAL_QUOTED;
		else if (is_tchar(ch))
			f->state = ST_EXT_VAL_TOKEN;
		else
			return -EBADMSG;
		return 0;
	case ST_EXT_VAL_TOKEN:
	case ST_EXT_AFTER_QUOTE:
		if (is_tchar(ch) && f->state == ST_EXT_VAL_TOKEN)
			return 0;
		if (is_ws(ch))
			f->state = ST_EXT_BWS;
		else if (ch == ';')
			f->state = ST_EXT_NAME_START;
		else if (ch == '\r')
			f->state = ST_CHUNK_LF;
		else
			return -EBADMSG;
		return 0;
	case ST_EXT_VAL_QUOTED:
		/* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
		if (ch == '"')
			f->state = ST_EXT_AFTER_QUOTE;
		else if (ch == '\\')
			f->state = ST_EXT_QPAIR;
		else if (!is_ws(ch) && !is_field_vchar(ch))
			return -EBADMSG;
		return 0;
	case ST_EXT_QPAIR:
		if (!is_ws(ch) && !is_field_vchar(ch))
			return -EBADMSG;
		f->state = ST_EXT_VAL_QUOTED;
		return 0;
	case ST_CHUNK_LF:
		if (ch != '\n')
			return -EBADMSG;
		f->line_len = 0;
		f->state = f->remaining ? ST_DATA : ST_FIELD_START;	/* last chunk: trailers */
		return 0;
	case ST_DATA_CR:
		if (ch != '\r')
			return -EBADMSG;
		f->state = ST_DATA_LF;
		return 0;
	case ST_DATA_LF:
		if (ch != '\n')
			return -EBADMSG;
		f->sub = 0;
		f->remaining = 0;
		f->line_len = 0;
		f->state = ST_CHUNK_SIZE;
		return 0;
	case ST_BODY_CL:
	case ST_BODY_EOF:
	case ST_DATA:
	case ST_DONE:
		break;
	}
	return -EBADMSG;	/* not reached: bodies are taken in framing_feed() */
}

static bool on_chunk_line(const struct framing *f)
{
	return f->state >= ST_CHUNK_SIZE && f->state <= ST_CHUNK_LF;
}

ssize_t framing_feed(struct framing *f, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && f->state != ST_DONE) {
		size_t take;

		switch ((enum state)f->state) {
		case ST_BODY_EOF:
			f->body += len - i;
			return (ssize_t)len;
		case ST_BODY_CL:
		case ST_DATA:
			take = len - i < f->remaining ? len - i : (size_t)f->remaining;
			f->remaining -= take;
			f->body += take;
			i += take;
			if (!f->remaining)
				f->state = f->state == ST_DATA ? ST_DATA_CR : ST_DONE;
			continue;
		case ST_VALUE:
			/* Most of a head: values of fields that frame nothing,
			 * checked as step() would and skipped in one run, up to
			 * the byte that ends them (or breaks them).
			 */
			if (f->hdr != HDR_OTHER)
				break;
			while (i < len && (is_ws((unsigned char)buf[i]) ||
					   is_field_vchar((unsigned char)buf[i])))
				i++;
			if (i == len)
				continue;
			break;
		default:
			break;
		}
		if (on_chunk_line(f) && ++f->line_len > FRAMING_CHUNK_LINE_MAX)
			return -EBADMSG;
		if (step(f, (unsigned char)buf[i]))
			return -EBADMSG;
		i++;
	}
	f->done = f->state == ST_DONE;
	return (ssize_t)i;
}

int framing_eof(struct framing *f)
{
	if (f->state == ST_BODY_EOF)
		f->state = ST_DONE;
	f->done = f->state == ST_DONE;
	return f->done ? 0 : -EBADMSG;
}
