"""A small authoritative DNS server for the tests, on loopback.

It answers MX, A and AAAA questions from a table over UDP and TCP on the
same port (RFC 1035 section 4.2). A name absent from the table gets
NXDOMAIN; a name present without records of the asked type gets an empty
NOERROR answer (NODATA). set_rcode() forces a reply code such as
SERVFAIL for a name, and set_udp_truncated() answers a name over UDP with
the TC bit and no records, so the client must ask again over TCP.

    dns = DnsServer()
    dns.add_mx("mx.test", 10, "mx1.mx.test")
    dns.add_a("mx1.mx.test", "127.0.0.2")
    ... dns.port, dns.queries ...
    dns.close()
"""

import ipaddress
import socket
import struct
import threading

TYPE_A = 1
TYPE_CNAME = 5
TYPE_MX = 15
TYPE_AAAA = 28
CLASS_IN = 1

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4

# Largest UDP answer without EDNS0 (RFC 1035 section 2.3.4).
UDP_MAX = 512


def encode_name(name):
    """Wire form of a domain name, uncompressed; "" or "." is the root."""
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError("label longer than 63 octets: %r" % label)
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def decode_name(raw):
    """Lowercase text of an uncompressed wire-form name."""
    labels, pos = [], 0
    while pos < len(raw) and raw[pos] != 0:
        labels.append(raw[pos + 1:pos + 1 + raw[pos]].decode("ascii"))
        pos += 1 + raw[pos]
    return ".".join(labels).lower()


def parse_question(packet):
    """Return (id, flags, name, qtype, qclass) of a query.

    Raises ValueError for a packet too short or a malformed name; a
    compression pointer is malformed here because queries carry none.
    """
    if len(packet) < 12:
        raise ValueError("packet shorter than a DNS header")
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError("query with %d questions" % qdcount)
    labels, pos = [], 12
    while True:
        if pos >= len(packet):
            raise ValueError("question name runs past the packet")
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length > 63 or pos + length > len(packet):
            raise ValueError("malformed label in the question")
        labels.append(packet[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(packet):
        raise ValueError("question without type and class")
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, qclass, packet[12:pos + 4]


class DnsServer:
    """Serves a table of records on host:port over UDP and TCP.

    queries: [(transport, name, qtype)] in arrival order, transport being
    "udp" or "tcp".
    """

    def __init__(self, host="127.0.0.1"):
        self.lock = threading.Lock()
        self.records = {}      # lowercase name -> [(type, rdata bytes)]
        self.rcodes = {}       # lowercase name -> forced reply code
        self.udp_truncated = set()
        self.queries = []
        self.udp, self.tcp = self._bind(host)
        self.host, self.port = self.udp.getsockname()[:2]
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _bind(host):
        """Bind UDP to a free port and TCP to the same port."""
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((host, 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((host, udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(8)
            return udp, tcp
        raise RuntimeError("no port free for both UDP and TCP on %s" % host)

    def _add(self, name, rtype, rdata):
        with self.lock:
            self.records.setdefault(name.lower().rstrip("."), []).append(
                (rtype, rdata))

    def add_mx(self, name, preference, exchange):
        self._add(name, TYPE_MX, struct.pack("!H", preference) + encode_name(exchange))

    def add_a(self, name, address):
        self._add(name, TYPE_A, ipaddress.IPv4Address(address).packed)

    def add_aaaa(self, name, address):
        self._add(name, TYPE_AAAA, ipaddress.IPv6Address(address).packed)

    def add_cname(self, name, target):
        self._add(name, TYPE_CNAME, encode_name(target))

    def set_rcode(self, name, rcode):
        with self.lock:
            self.rcodes[name.lower().rstrip(".")] = rcode

    def set_udp_truncated(self, name):
        with self.lock:
            self.udp_truncated.add(name.lower().rstrip("."))

    def queried(self, name, qtype=None):
        """Number of questions for name (and qtype when given)."""
        with self.lock:
            return sum(1 for _, n, t in self.queries
                       if n == name.lower() and (qtype is None or t == qtype))

    def answer(self, packet, transport):
        """Build the reply to one query packet, or None to stay silent."""
        try:
            qid, flags, name, qtype, qclass, question = parse_question(packet)
        except ValueError:
            if len(packet) < 2:
                return None
            return struct.pack("!HHHHHH", struct.unpack("!H", packet[:2])[0],
                               0x8000 | FORMERR, 0, 0, 0, 0)
        key = name.lower().rstrip(".")
        with self.lock:
            self.queries.append((transport, key, qtype))
            rcode = self.rcodes.get(key)
            rrs = list(self.records.get(key, []))
            truncate = transport == "udp" and key in self.udp_truncated
        # QR, the query's opcode and RD, then AA and RA.
        reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080
        if rcode is None:
            rcode = NXDOMAIN if key not in self.records else NOERROR
        if (flags >> 11) & 0xF != 0:
            rcode = NOTIMP
        answers = []
        if rcode == NOERROR and qclass == CLASS_IN:
            answers = [(t, rdata) for t, rdata in rrs if t == qtype or t == TYPE_CNAME]
        if truncate:
            reply_flags |= 0x0200
            answers = []
        # The owner of the question's records is a pointer to the question
        # name at offset 12. A CNAME brings its target's records along, as
        # a recursive resolver's answer does.
        body = b""
        for rtype, rdata in answers:
            body += struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, 60, len(rdata)) + rdata
        extra = self._cname_targets(answers, qtype)
        for owner, rtype, rdata in extra:
            body += encode_name(owner) + struct.pack("!HHIH", rtype, CLASS_IN, 60,
                                                     len(rdata)) + rdata
        answers += extra
        header = struct.pack("!HHHHHH", qid, reply_flags | rcode, 1,
                             len(answers), 0, 0)
        return header + question + body

    def _cname_targets(self, answers, qtype):
        """Records of qtype owned by the targets of the CNAMEs in answers."""
        out = []
        with self.lock:
            for rtype, rdata in answers:
                if rtype != TYPE_CNAME or qtype == TYPE_CNAME:
                    continue
                target = decode_name(rdata)
                for t, target_rdata in self.records.get(target, []):
                    if t == qtype:
                        out.append((target, t, target_rdata))
        return out

    def _serve_udp(self):
        while True:
            try:
                packet, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            reply = self.answer(packet, "udp")
            if reply is None:
                continue
            if len(reply) > UDP_MAX:
                reply = reply[:2] + bytes([reply[2] | 0x02]) + reply[3:6] + b"\0" * 6
                # Keep the question and drop every record.
                reply += parse_question(packet)[5]
            try:
                self.udp.sendto(reply, peer)
            except OSError:
                return

    def _serve_tcp(self):
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_session, args=(conn,), daemon=True).start()

    def _tcp_session(self, conn):
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    head = self._recv_exact(conn, 2)
                    if head is None:
                        return
                    packet = self._recv_exact(conn, struct.unpack("!H", head)[0])
                    if packet is None:
                        return
                    reply = self.answer(packet, "tcp")
                    if reply is None:
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    @staticmethod
    def _recv_exact(conn, count):
        data = b""
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def close(self):
        # shutdown() wakes a thread blocked in accept() or recvfrom().
        for sock in (self.udp, self.tcp):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
