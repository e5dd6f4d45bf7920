"""A client of a Themis cluster, written from docs/WIRE.md (wire version 2). Python 3.11, standard library
plus `cryptography`.

    client = Client("DIR/cluster.json", client_id=0)
    result = client.invoke(operation_bytes)            # ordered; f+1 matching replies
    result = client.invoke_read_only(operation_bytes)  # every replica answers alike, or ordered instead
    client.close()

One `Client` is one client id with one request outstanding at a time (WIRE.md 6.1); it is not thread-safe.
It keeps one TCP connection per replica and drives them with a `selectors` loop that runs only inside the
constructor and the calls: a replica that is down or drops the connection is reconnected 200 ms later, while
a call runs, and meanwhile the other replicas serve (f of them may be missing). A cluster file with `tls`
(keygen --tls) makes every connection TLS 1.3 (the `ssl` module), the replica's certificate checked against
the file's authority and the host dialled.
"""

import base64
import errno
import hashlib
import hmac
import json
import os
import selectors
import socket
import ssl
import struct
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

WIRE_VERSION = 2
DOMAIN = b"THEMIS/1"  # every authenticated byte string starts with it (section 7)

# Message kinds (section 2.1).
HELLO, HELLO_PROOF, GOODBYE = 0x01, 0x02, 0x03
REQUEST, REPLY, READ_ONLY_REQUEST, TENTATIVE_REPLY = 0x20, 0x21, 0x22, 0x23

REPLICA, CLIENT = 0, 1  # principal kinds (section 1)

HANDSHAKE_FRAME_BYTES_MAX = 4096  # the first two frames of a connection (section 2.2, rule 1)
GOODBYE_REASON_BYTES_MAX = 512

CONNECT_TIMEOUT = 2.0  # as the Swift client (section 1)
RECONNECT_DELAY = 0.2  # after a failed connect or a closed connection (section 1)
HANDSHAKE_TIMEOUT = 10.0  # a replica gives up on a handshake after 10 s (section 3.6)
RETRANSMIT_INTERVAL = 0.5  # first retransmission; doubles after each (section 6.4)
READ_ONLY_PAUSE = 10.0  # reads are ordered directly for this long after one timed out (section 6.7)
SEND_BUFFER_MAX = 8 << 20  # a replica that lets more pile up unread is dropped

LIMIT_DEFAULTS = dict(frameBytesMax=4194304, operationBytesMax=65536, resultBytesMax=65536,
                      authenticatorBytesMax=32768, batchRequestsMax=128, pipelineDepthMax=4,
                      pendingRequestsMax=16384, clientsMax=65536, stateChunkBytes=1048576,
                      stateBytesMax=1073741824, committedBatchesPerMessageMax=32, fetchRepliesBurst=16,
                      connectionsMax=4096)

SCHEMES = ("hmac", "ed25519", "ecdsa", "rsa")


# ---------------------------------------------------------------------------------------------------------
# Byte handling (sections 3, 4, 5 and 7; the fragments of appendix A)

def _principal(kind, ident):
    """The 5-byte encoding of a principal: u8 kind, u32 id (section 1)."""
    return struct.pack(">BI", kind, ident)


def _frame(payload):
    return struct.pack(">I", len(payload)) + payload


def cluster_tag(raw):
    """The cluster tag (section 3.3): SHA-256 over the canonical JSON of the *parsed* cluster-file model,
    defaults filled in and unknown keys dropped, not over the file's bytes."""
    proto = raw["protocol"]
    fault = raw.get("faultModel") or {"pbft": "byzantine", "hybster": "hybrid"}.get(proto, "byzantine")
    s = raw.get("settings")
    if s is None:
        settings = dict(checkpointInterval=1000, watermarkWindow=2000, requestTimeoutTicks=100, pillars=1)
    else:
        # `or` maps a JSON null to the default too, as Swift's decodeIfPresent does (0 is invalid anyway).
        k = s.get("checkpointInterval") or 1000
        settings = dict(checkpointInterval=k, watermarkWindow=s.get("watermarkWindow") or 2 * k,
                        requestTimeoutTicks=s.get("requestTimeoutTicks") or 100, pillars=s.get("pillars") or 1)
        if s.get("tentativeExecution"):  # only when on (Swift encodes it only then)
            settings["tentativeExecution"] = True
    limits = {key: ((raw.get("limits") or {}).get(key) or default) for key, default in LIMIT_DEFAULTS.items()}

    def pick(obj, keys):  # Swift omits nil optionals
        return {key: obj[key] for key in keys if obj.get(key) is not None}

    model = {"version": raw["version"], "protocol": proto, "faultModel": fault,
             "authentication": raw["authentication"], "settings": settings, "limits": limits,
             "replicas": [pick(r, ["id", "host", "port", "signingKey", "agreementKey", "dataDir"])
                          for r in raw["replicas"]],
             "clients": [pick(c, ["id", "signingKey", "agreementKey"]) for c in (raw.get("clients") or [])]}
    if raw.get("tls") is not None:
        model["tls"] = pick(raw["tls"], ["certificateAuthority"])
    text = json.dumps(model, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def link_key(my_private, me, peer, peer_public):
    """K(me, peer) (section 3.4): HKDF-SHA256 of the X25519 secret, info = both principals, lower first."""
    try:
        shared = my_private.exchange(peer_public)
    except ValueError:  # cryptography refuses the all-zero secret of a low-order point, as Themis does
        raise ValueError(f"the agreement key of {peer} is a low-order X25519 point") from None
    lower, higher = sorted([me, peer])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"themis/v1/link",
                info=_principal(*lower) + _principal(*higher)).derive(shared)


def message_mac(key, data):
    return hmac.new(key, b"themis/v1/message:" + data, hashlib.sha256).digest()


def handshake_mac(key, prover, transcript):
    return hmac.new(key, b"themis/v1/handshake:" + _principal(*prover) + transcript, hashlib.sha256).digest()


def hello_fields(kind, ident, nonce, tag):
    """H(hello), 45 bytes: the hello without version, kind and nonce length (sections 3.5, 7.4)."""
    return _principal(kind, ident) + nonce + struct.pack(">Q", tag)


def request_digest(client, timestamp, operation):
    """D (section 7.1): integers widened to u64, the domain and the operation length-prefixed."""
    domain = b"themis.request.v1"
    return hashlib.sha256(struct.pack(">Q", len(domain)) + domain
                          + struct.pack(">QQQ", client, timestamp, len(operation)) + operation).digest()


def request_payload(kind, client, timestamp, operation, authenticator):
    """A request (0x20) or readOnlyRequest (0x22) payload (sections 4.2, 4.2a)."""
    return (struct.pack(">BBIQI", WIRE_VERSION, kind, client, timestamp, len(operation)) + operation
            + struct.pack(">I", len(authenticator)) + authenticator)


def reply_authenticated_bytes(view, timestamp, client, replica, result, kind=REPLY):
    """The 65 bytes a reply's MAC covers (section 7.2); kind TENTATIVE_REPLY for a tentative one (5.1a)."""
    return DOMAIN + bytes([kind]) + struct.pack(">QQII", view, timestamp, client, replica) \
        + hashlib.sha256(result).digest()


def _decode_hello(payload):
    """(principal kind, id, nonce, tag) of a hello payload (section 3.2), or None."""
    if len(payload) != 51 or payload[1] != HELLO:
        return None
    _, _, kind, ident, nonce_length = struct.unpack_from(">BBBII", payload)
    if kind not in (REPLICA, CLIENT) or nonce_length != 32:
        return None
    return kind, ident, payload[11:43], struct.unpack_from(">Q", payload, 43)[0]


def _decode_byte_string(payload, offset, limit):
    """The u32-length-prefixed bytes at offset, which must end the payload, or None."""
    if len(payload) < offset + 4:
        return None
    (length,) = struct.unpack_from(">I", payload, offset)
    if length > limit or len(payload) != offset + 4 + length:
        return None
    return payload[offset + 4:]


def _decode_reply(payload, limits):
    """(view, timestamp, client, replica, result, authenticator, tentative) of a reply or tentativeReply
    payload (sections 5.1, 5.1a), or None if it breaks the decoding rules of section 2.3."""
    if len(payload) < 34 or payload[1] not in (REPLY, TENTATIVE_REPLY):
        return None
    _, _, view, timestamp, client, replica, result_length = struct.unpack_from(">BBQQIII", payload)
    if result_length > limits["resultBytesMax"] or len(payload) < 34 + result_length:
        return None
    result = payload[30:30 + result_length]
    authenticator = _decode_byte_string(payload, 30 + result_length, limits["authenticatorBytesMax"])
    if authenticator is None:
        return None
    return view, timestamp, client, replica, result, authenticator, payload[1] == TENTATIVE_REPLY


def _goodbye_frame(reason):
    text = reason.encode("utf-8")[:GOODBYE_REASON_BYTES_MAX].decode("utf-8", "ignore").encode("utf-8")
    return _frame(struct.pack(">BBI", WIRE_VERSION, GOODBYE, len(text)) + text)


# ---------------------------------------------------------------------------------------------------------
# Configuration and keys

class Cluster:
    """What a client needs from cluster.json (section 1): endpoints, agreement keys, n, f, limits, tag."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as file:
            raw = json.load(file)
        if raw.get("version") != 1:
            raise ValueError(f"{path}: version must be 1")
        self.scheme = raw["authentication"]
        if self.scheme not in SCHEMES:
            raise ValueError(f"{path}: unsupported authentication scheme {self.scheme!r}")
        # TLS (keygen --tls): every connection runs TLS 1.3 first, the replica's certificate checked against the
        # cluster's authority and the host dialled (an IP address is matched against the certificate's).
        self.tls_context = None
        if raw.get("tls") is not None:
            authority = raw["tls"].get("certificateAuthority")
            if not isinstance(authority, str) or "-----BEGIN CERTIFICATE-----" not in authority:
                raise ValueError(f"{path}: tls.certificateAuthority is not a PEM certificate")
            self.tls_context = ssl.create_default_context(cadata=authority)
            self.tls_context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.tag = cluster_tag(raw)
        self.fault_model = raw.get("faultModel") or {"hybster": "hybrid"}.get(raw["protocol"], "byzantine")
        self.replicas = sorted(raw["replicas"], key=lambda r: r["id"])
        if [r["id"] for r in self.replicas] != list(range(len(self.replicas))):
            raise ValueError(f"{path}: replica ids must be exactly 0..n-1")
        self.n = len(self.replicas)
        # f (section 6.3): n >= 3f + 1 (byzantine) or n >= 2f + 1 (hybrid).
        self.f = (self.n - 1) // (2 if self.fault_model == "hybrid" else 3)
        # A quorum (ClusterConfiguration.quorumSize): 2f + 1 for n = 3f + 1; what tentative replies need.
        self.quorum = (self.n + self.f + 2) // 2 if self.fault_model == "byzantine" else self.f + 1
        self.limits = {key: ((raw.get("limits") or {}).get(key) or default)
                       for key, default in LIMIT_DEFAULTS.items()}
        self.clients = {c["id"]: c for c in (raw.get("clients") or [])}


def _load_signing_key(scheme, text):
    """The private signing key of a key file (PrivateKeyFile.swift, SigningKeys.swift)."""
    if scheme == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    if scheme == "ecdsa":
        scalar = base64.b64decode(text, validate=True)
        if len(scalar) != 32:
            raise ValueError("expected a 32-byte P-256 private scalar")
        return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    if text.startswith("-----BEGIN"):  # rsa: PEM, or base64 of PKCS#1 DER
        return serialization.load_pem_private_key(text.encode("ascii"), password=None)
    return serialization.load_der_private_key(base64.b64decode(text, validate=True), password=None)


def _signing_public_bytes(scheme, public_key):
    """A public signing key as the cluster file lists it (section 7.1)."""
    if scheme == "ed25519":
        return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if scheme == "ecdsa":
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _listed_signing_bytes(scheme, text):
    if scheme == "rsa" and text.startswith("-----BEGIN"):
        return _signing_public_bytes(scheme, serialization.load_pem_public_key(text.encode("ascii")))
    return base64.b64decode(text, validate=True)


def _sign(scheme, key, data):
    """A request authenticator for a signature scheme (section 7.1)."""
    if scheme == "ed25519":
        return key.sign(data)
    if scheme == "ecdsa":  # raw r || s, not DER
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())


# ---------------------------------------------------------------------------------------------------------
# Connections

class _Link:
    """The connection to one replica and its handshake state (section 3.1)."""

    CLOSED, CONNECTING, TLS_HANDSHAKE, AWAIT_HELLO, AWAIT_PROOF, ESTABLISHED = range(6)

    def __init__(self, replica, host, port, key):
        self.replica = replica
        self.address = (host, port)
        self.key = key  # K(client, replica)
        self.sock = None
        self.state = _Link.CLOSED
        self.retry_at = 0.0  # CLOSED: when to connect again
        self.deadline = 0.0  # CONNECTING .. AWAIT_PROOF: when to give up on this attempt
        self.events = 0  # what the selector watches
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.frames = 0  # frames received on this connection
        self.own_hello = b""  # H(our hello)
        self.peer_hello = b""  # H(the replica's hello)
        self.tried = False  # an attempt has ended (established or failed)
        self.problem = "not connected yet"  # why the last attempt failed, for error messages


class _Pending:
    """The outstanding request (one per client id, section 6.1)."""

    def __init__(self, timestamp, frame, read_only):
        self.timestamp = timestamp
        self.frame = frame
        self.read_only = read_only
        self.replies = {}  # replica -> (view, result): the first authentic reply of each (section 6.3)
        self.result = None
        self.hopeless = False  # read-only: no result can still gather n replies


class Client:
    """One client id of a Themis cluster. See the module documentation."""

    def __init__(self, config_path, client_id, key_path=None, timeout=10.0):
        """Loads cluster.json and the client's key file (default: client-<id>.key next to cluster.json),
        connects to every replica and waits (at most 2 s) until each handshake succeeded or failed. A
        replica that cannot be reached is not an error: it is retried while calls run.
        Raises OSError or ValueError (also json and cryptography errors) for bad files."""
        self.id = client_id
        self.timeout = timeout
        self.cluster = Cluster(config_path)
        if client_id not in self.cluster.clients:
            raise ValueError(f"client {client_id} is not listed in {config_path}")
        if key_path is None:
            key_path = os.path.join(os.path.dirname(os.path.abspath(config_path)), f"client-{client_id}.key")
        agreement, self._signer = self._load_keys(key_path)
        me = (CLIENT, client_id)
        self._links = [_Link(r["id"], r["host"], r["port"],
                             link_key(agreement, me, (REPLICA, r["id"]),
                                      x25519.X25519PublicKey.from_public_bytes(base64.b64decode(r["agreementKey"]))))
                       for r in self.cluster.replicas]
        self._selector = selectors.DefaultSelector()
        self._closed = False
        self._pending = None
        self._last_timestamp = 0
        self._view = 0  # the primary is replica view mod n (section 6.2)
        self._read_only_paused_until = 0.0
        self.read_only_completed = 0  # reads answered alike by every replica
        self.read_only_fallbacks = 0  # reads ordered instead (section 6.7)
        self.tentative_completed = 0  # results accepted on a quorum that held tentative replies (section 6.3)
        ready_by = time.monotonic() + min(timeout, CONNECT_TIMEOUT)
        while not all(link.tried for link in self._links) and time.monotonic() < ready_by:
            self._poll(ready_by - time.monotonic())

    def _load_keys(self, path):
        """The X25519 key and the signing key of the key file, checked against cluster.json (as `Keyring`)."""
        with open(path, encoding="utf-8") as file:
            keys = json.load(file)
        scheme = self.cluster.scheme
        if keys.get("kind") != "client" or keys.get("id") != self.id:
            raise ValueError(f"{path} does not hold the keys of client {self.id}")
        if keys.get("scheme") != scheme:
            raise ValueError(f"{path} is for scheme {keys.get('scheme')!r}, the cluster uses {scheme!r}")
        agreement = x25519.X25519PrivateKey.from_private_bytes(base64.b64decode(keys["agreementKey"], validate=True))
        listed = self.cluster.clients[self.id]
        public = agreement.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if public != base64.b64decode(listed["agreementKey"]):
            raise ValueError(f"the agreement key in {path} is not the one cluster.json lists for client {self.id}")
        if scheme == "hmac":
            return agreement, None
        signer = _load_signing_key(scheme, keys["signingKey"])
        if _signing_public_bytes(scheme, signer.public_key()) != _listed_signing_bytes(scheme, listed["signingKey"]):
            raise ValueError(f"the signing key in {path} is not the one cluster.json lists for client {self.id}")
        return agreement, signer

    # --- calls ------------------------------------------------------------------------------------------

    def invoke(self, operation):
        """Orders `operation` and returns the result f+1 replicas agree on (sections 6.2-6.4).
        Raises TimeoutError after `timeout` seconds (the request may still execute later)."""
        return self._invoke_ordered(self._checked(operation), time.monotonic() + self.timeout)

    def invoke_read_only(self, operation):
        """Reads without ordering (section 6.7): the result counts only if all n replicas answer alike;
        otherwise the operation is ordered as a new request within the same deadline. Raises TimeoutError."""
        operation = self._checked(operation)
        deadline = time.monotonic() + self.timeout
        if self.cluster.fault_model == "hybrid":  # Hybster replicas do not serve reads (section 4.2a)
            return self._invoke_ordered(operation, deadline)
        if time.monotonic() < self._read_only_paused_until:
            self.read_only_fallbacks += 1
            return self._invoke_ordered(operation, deadline)
        pending = self._start(operation, READ_ONLY_REQUEST)
        for link in self._links:
            self._send(link, pending.frame)
        # A read-only request is never retransmitted: wait one retransmission interval at most.
        give_up = min(deadline, time.monotonic() + RETRANSMIT_INTERVAL)
        try:
            while pending.result is None and not pending.hopeless and time.monotonic() < give_up:
                self._poll(give_up - time.monotonic())
        finally:
            self._pending = None
        if pending.result is not None:
            self.read_only_completed += 1
            return pending.result
        if not pending.hopeless:  # a replica did not answer: order reads for a while (section 6.7)
            self._read_only_paused_until = time.monotonic() + READ_ONLY_PAUSE
        self.read_only_fallbacks += 1
        # A new timestamp, so that late read-only replies match nothing.
        return self._invoke_ordered(operation, deadline)

    def close(self):
        """Closes the connections. No goodbye: the Swift client sends one only to refuse a peer (section 4.4)."""
        self._closed = True
        for link in self._links:
            if link.sock is not None:
                self._selector.unregister(link.sock)
                link.sock.close()
                link.sock = None
            link.state = _Link.CLOSED
        self._selector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _checked(self, operation):
        if self._closed:
            raise ValueError("the client is closed")
        operation = bytes(operation)
        # A replica would refuse the whole frame and close the connection (section 2.3).
        if len(operation) > self.cluster.limits["operationBytesMax"]:
            raise ValueError(f"operation of {len(operation)} bytes exceeds operationBytesMax")
        return operation

    def _start(self, operation, kind):
        """Makes the outstanding request with a fresh timestamp: wall-clock microseconds, or one more than the
        last, so a new process reusing the id still issues larger timestamps (section 6.1)."""
        timestamp = max(time.time_ns() // 1000, self._last_timestamp + 1)
        self._last_timestamp = timestamp
        # The authenticated bytes differ by the kind byte, so a read never verifies as a write (section 7.1a).
        signed = DOMAIN + bytes([kind]) + request_digest(self.id, timestamp, operation)
        if self._signer is None:
            # hmac: the MAC vector for all n replicas, entry i for replica i; the backups check their entry
            # inside the primary's proposal, so one MAC is not enough (section 7.1).
            authenticator = b"".join(message_mac(link.key, signed) for link in self._links)
        else:
            authenticator = _sign(self.cluster.scheme, self._signer, signed)
        frame = _frame(request_payload(kind, self.id, timestamp, operation, authenticator))
        self._pending = _Pending(timestamp, frame, kind == READ_ONLY_REQUEST)
        return self._pending

    def _invoke_ordered(self, operation, deadline):
        pending = self._start(operation, REQUEST)
        primary = self._links[self._view % self.cluster.n]
        # To the primary, or to every replica if the link to the primary is down (section 6.2).
        for link in [primary] if primary.state == _Link.ESTABLISHED else self._links:
            self._send(link, pending.frame)
        interval = RETRANSMIT_INTERVAL
        retransmit_at = time.monotonic() + interval
        try:
            while pending.result is None:
                now = time.monotonic()
                if now >= deadline:
                    raise TimeoutError(self._timeout_message())
                if now >= retransmit_at:  # the same bytes, to every replica, with doubling intervals (6.4)
                    for link in self._links:
                        self._send(link, pending.frame)
                    interval = min(2 * interval, self.timeout)
                    retransmit_at = now + interval
                self._poll(min(deadline, retransmit_at) - now)
        finally:
            self._pending = None
        return pending.result

    def _timeout_message(self):
        message = f"no f+1 matching replies within {self.timeout} s"
        down = [f"replica {link.replica}: {link.problem}" for link in self._links if link.state != _Link.ESTABLISHED]
        return message + (f" ({'; '.join(down)})" if down else "")

    # --- replies ----------------------------------------------------------------------------------------

    def _on_reply(self, link, reply):
        """Counts a reply by the rules of section 6.3 and completes the pending request on a quorum."""
        view, timestamp, client, replica, result, authenticator, tentative = reply
        pending = self._pending
        # Rules 1-4 first, so that stale and duplicate replies cost no MAC (the link's replica is < n). A
        # committed reply replaces the same replica's tentative one (rule 3).
        earlier = pending.replies.get(replica) if pending is not None else None
        if (pending is None or pending.result is not None or replica != link.replica or client != self.id
                or timestamp != pending.timestamp or (earlier is not None and (tentative or not earlier[2]))):
            return
        kind = TENTATIVE_REPLY if tentative else REPLY
        expected = message_mac(link.key, reply_authenticated_bytes(view, timestamp, client, replica, result, kind))
        if len(authenticator) != 32 or not hmac.compare_digest(expected, authenticator):  # rule 5
            return
        pending.replies[replica] = (view, result, tentative)
        n = self.cluster.n
        quorum = n if pending.read_only else self.cluster.f + 1  # sections 6.7 and 6.3
        matching = sorted((v for v, r, _ in pending.replies.values() if r == result), reverse=True)
        committed = sum(1 for _, r, t in pending.replies.values() if r == result and not t)
        # Tentative replies (5.1a) count only towards a quorum of 2f + 1, with the committed ones, and only those
        # of one view (section 6.3).
        views = [v for v, r, t in pending.replies.values() if r == result and t]
        same_view = max((views.count(v) for v in views), default=0)
        final = len(matching) >= quorum if pending.read_only else (committed >= quorum or committed + same_view >= self.cluster.quorum)
        if final:
            # Move to the (f+1)-th largest view among them, so f faulty replicas cannot steer the client.
            self._view = max(self._view, matching[self.cluster.f])
            pending.result = result
            if committed < len(matching):
                self.tentative_completed += 1
        elif pending.read_only:
            results = [r for _, r, _ in pending.replies.values()]
            best = max(results.count(r) for r in results)
            pending.hopeless = best + (n - len(pending.replies)) < quorum

    # --- the event loop ---------------------------------------------------------------------------------

    def _poll(self, timeout):
        """One round of I/O (at most `timeout` seconds), then the links' timers."""
        now = time.monotonic()
        timers = [link.retry_at if link.state == _Link.CLOSED else link.deadline
                  for link in self._links if link.state != _Link.ESTABLISHED]
        wait = min([timeout] + [t - now for t in timers])
        for key, events in self._selector.select(max(0.0, wait)):
            link = key.data
            if link.state == _Link.CONNECTING:
                self._connected(link)
                continue
            if link.state == _Link.TLS_HANDSHAKE:
                self._tls_step(link)
                continue
            if events & selectors.EVENT_WRITE:
                self._flush(link)
            if events & selectors.EVENT_READ and link.sock is not None:
                self._receive(link)
        now = time.monotonic()
        for link in self._links:
            if link.state == _Link.CLOSED:
                if now >= link.retry_at and not self._closed:
                    self._connect(link)
            elif link.state != _Link.ESTABLISHED and now >= link.deadline:
                self._drop(link, "connect timed out" if link.state == _Link.CONNECTING else "no handshake in time")

    def _watch(self, link, events):
        if events != link.events:
            self._selector.modify(link.sock, events, link)
            link.events = events

    def _connect(self, link):
        try:
            family, kind, proto, _, address = socket.getaddrinfo(*link.address, type=socket.SOCK_STREAM)[0]
            link.sock = socket.socket(family, kind, proto)
        except OSError as error:
            return self._drop(link, str(error))
        link.sock.setblocking(False)
        link.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link.state = _Link.CONNECTING
        link.deadline = time.monotonic() + CONNECT_TIMEOUT
        link.events = selectors.EVENT_WRITE
        self._selector.register(link.sock, link.events, link)
        code = link.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self._drop(link, os.strerror(code))

    def _connected(self, link):
        """The TCP connect finished: send our hello at once, without waiting for the replica's (3.1)."""
        code = link.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            return self._drop(link, os.strerror(code))
        if self.cluster.tls_context is not None:
            return self._start_tls(link)
        self._send_hello(link)

    def _start_tls(self, link):
        """TLS clusters: the TLS handshake comes first, the Themis handshake inside it."""
        self._selector.unregister(link.sock)
        try:
            link.sock = self.cluster.tls_context.wrap_socket(link.sock, server_hostname=link.address[0],
                                                             do_handshake_on_connect=False)
        except (OSError, ValueError) as error:
            self._selector.register(link.sock, link.events, link)
            return self._drop(link, f"TLS: {error}")
        self._selector.register(link.sock, link.events, link)
        link.state = _Link.TLS_HANDSHAKE
        link.deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        self._tls_step(link)

    def _tls_step(self, link):
        try:
            link.sock.do_handshake()
        except ssl.SSLWantReadError:
            return self._watch(link, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            return self._watch(link, selectors.EVENT_WRITE)
        except (ssl.SSLError, ssl.CertificateError, OSError) as error:
            return self._drop(link, f"TLS handshake failed: {error}")
        self._send_hello(link)

    def _send_hello(self, link):
        nonce = os.urandom(32)  # fresh per connection (section 3.2)
        link.own_hello = hello_fields(CLIENT, self.id, nonce, self.cluster.tag)
        link.state = _Link.AWAIT_HELLO
        link.deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        self._watch(link, selectors.EVENT_READ)
        self._write(link, _frame(struct.pack(">BBBII", WIRE_VERSION, HELLO, CLIENT, self.id, 32) + nonce
                                 + struct.pack(">Q", self.cluster.tag)))

    def _drop(self, link, problem, reason=None):
        """Closes the connection (after a goodbye carrying `reason`, if given) and schedules a reconnect."""
        if link.sock is not None:
            if reason is not None:
                try:
                    link.sock.send(_goodbye_frame(reason))
                except OSError:
                    pass
            self._selector.unregister(link.sock)
            link.sock.close()
            link.sock = None
        link.state = _Link.CLOSED
        link.retry_at = time.monotonic() + RECONNECT_DELAY
        link.inbuf.clear()
        link.outbuf.clear()
        link.frames = 0
        link.tried = True
        link.problem = problem

    def _send(self, link, frame):
        """Sends a request frame if the link is established; requests to other replicas are skipped."""
        if link.state == _Link.ESTABLISHED:
            self._write(link, frame)

    def _write(self, link, data):
        link.outbuf += data
        if len(link.outbuf) > SEND_BUFFER_MAX:
            return self._drop(link, "the replica does not read")
        self._flush(link)

    def _flush(self, link):
        try:
            del link.outbuf[:link.sock.send(link.outbuf)]
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError as error:
            return self._drop(link, str(error))
        self._watch(link, selectors.EVENT_READ | (selectors.EVENT_WRITE if link.outbuf else 0))

    def _receive(self, link):
        """Reads what arrived and handles every complete frame; the length prefix is checked before the
        payload is buffered (section 2.2), so at most one frame limit is ever held."""
        try:
            data = link.sock.recv(1 << 16)
            # TLS: records already decrypted wait in the socket object, where select does not see them.
            while isinstance(link.sock, ssl.SSLSocket) and link.sock.pending():
                data += link.sock.recv(link.sock.pending())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except ssl.SSLZeroReturnError:
            data = b""
        except OSError as error:
            return self._drop(link, str(error))
        if not data:
            return self._drop(link, "the replica closed the connection")
        link.inbuf += data
        while len(link.inbuf) >= 4 and link.state != _Link.CLOSED:
            (length,) = struct.unpack_from(">I", link.inbuf)
            # The replica's hello and helloProof are held to the handshake limit, the rest to frameBytesMax.
            limit = self.cluster.limits["frameBytesMax"]
            if link.frames < 2:
                limit = min(HANDSHAKE_FRAME_BYTES_MAX, limit)
            if length == 0 or length > limit:  # the stream cannot be resynchronised: give up on it
                reason = "empty frame (length prefix 0)" if length == 0 else \
                    f"frame of {length} bytes exceeds the limit of {limit} bytes"
                return self._drop(link, reason, reason)
            if len(link.inbuf) < 4 + length:
                return
            payload = bytes(link.inbuf[4:4 + length])
            del link.inbuf[:4 + length]
            link.frames += 1
            self._on_frame(link, payload)

    def _on_frame(self, link, payload):
        if len(payload) < 2 or payload[0] != WIRE_VERSION:
            if link.state != _Link.ESTABLISHED:
                self._drop(link, "malformed handshake frame", "malformed message")
            return
        kind = payload[1]
        if kind == GOODBYE:  # a refusal: close without answering (section 4.4)
            reason = _decode_byte_string(payload, 2, GOODBYE_REASON_BYTES_MAX)
            text = "" if reason is None else reason.decode("utf-8", "replace")
            return self._drop(link, f"goodbye: {text}")
        if link.state == _Link.AWAIT_HELLO:
            hello = _decode_hello(payload)
            if hello is None:
                return self._drop(link, "expected Hello", "expected Hello")
            principal_kind, ident, nonce, tag = hello
            who = f"{'replica' if principal_kind == REPLICA else 'client'} {ident}"
            # The Swift client's checks (section 3.6): our cluster, and the replica we dialled.
            if tag != self.cluster.tag:
                return self._drop(link, "another cluster configuration",
                                  f"{who} belongs to another cluster configuration")
            if (principal_kind, ident) != (REPLICA, link.replica):
                return self._drop(link, f"{who} answered", f"{who} is not accepted on this connection")
            link.peer_hello = hello_fields(principal_kind, ident, nonce, tag)
            link.state = _Link.AWAIT_PROOF
            # Prover = our hello as sent, verifier = the replica's as received (sections 3.5, 7.4).
            proof = handshake_mac(link.key, (CLIENT, self.id),
                                  DOMAIN + bytes([HELLO_PROOF]) + link.own_hello + link.peer_hello)
            self._write(link, _frame(struct.pack(">BBI", WIRE_VERSION, HELLO_PROOF, len(proof)) + proof))
        elif link.state == _Link.AWAIT_PROOF:
            if kind != HELLO_PROOF:
                return self._drop(link, "expected HelloProof", "expected HelloProof")
            proof = _decode_byte_string(payload, 2, self.cluster.limits["authenticatorBytesMax"])
            expected = handshake_mac(link.key, (REPLICA, link.replica),
                                     DOMAIN + bytes([HELLO_PROOF]) + link.peer_hello + link.own_hello)
            if proof is None or len(proof) != 32 or not hmac.compare_digest(proof, expected):
                return self._drop(link, "the replica's proof did not verify",
                                  f"replica {link.replica} could not prove its identity")
            link.state = _Link.ESTABLISHED
            link.tried = True
            link.problem = None
            # A replica that comes up late still gets the waiting request (section 6.2).
            if self._pending is not None:
                self._send(link, self._pending.frame)
        elif kind in (REPLY, TENTATIVE_REPLY):
            reply = _decode_reply(payload, self.cluster.limits)
            if reply is not None:
                self._on_reply(link, reply)
        # Anything else after the handshake (a status report, a malformed reply, a kind a replica must not
        # send) is ignored: the stream is still in sync, and a retransmission fetches a lost reply again.
