#!/usr/bin/python3
"""Export a pcap as IPFIX PSAMP records, the way Juniper's inline monitoring
does: one record per sampled packet holding ingressInterface,
dataLinkFrameSize and the first bytes of the frame (dataLinkFrameSection),
no counters and no addresses. The IPFIX encoding is python3-ipfix's
(Debian package python3-ipfix), an implementation independent of goflow2.

usage: psamp_export.py PCAP HOST PORT N SNAPLEN  (testkit.RunPSAMPExport runs it)

Every N-th frame is sampled (frames 0, N, 2N, ... of the file), and the
rate is announced in an options record (samplingPacketInterval 1,
samplingPacketSpace N-1, RFC 5477) before the data. HOST must be a
loopback address. Prints "exported R records in M messages".
"""
import ipaddress
import socket
import struct
import sys

import ipfix.ie
import ipfix.message
import ipfix.template

DOMAIN = 7
DATA_TID, OPTIONS_TID = 256, 257


def frames(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            incl = struct.unpack(order + "IIII", rec)[2]
            yield f.read(incl)


def main():
    pcap, host, port, n, snaplen = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("psamp_export.py: %s is not a loopback address" % host)
    ipfix.ie.use_iana_default()
    data = ipfix.template.for_specs(DATA_TID, "ingressInterface", "egressInterface",
                                    "dataLinkFrameSize", "dataLinkFrameSection")
    opts = ipfix.template.for_specs(OPTIONS_TID, "observationDomainId", "samplingPacketInterval",
                                    "samplingPacketSpace")
    opts.scopecount = 1
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    msg = ipfix.message.MessageBuffer()
    msg.mtu = 1400  # a router's datagrams fit an Ethernet frame
    messages = records = 0

    def begin():
        msg.begin_export(DOMAIN)
        msg.add_template(data)
        msg.add_template(opts)

    def flush():
        nonlocal messages
        sock.sendto(msg.to_bytes(), (host, port))
        messages += 1
        begin()

    begin()
    msg.export_ensure_set(OPTIONS_TID)
    msg.export_namedict({"observationDomainId": DOMAIN, "samplingPacketInterval": 1, "samplingPacketSpace": n - 1})
    flush()
    for i, frame in enumerate(frames(pcap)):
        if i % n:
            continue
        rec = {"ingressInterface": 3, "egressInterface": 4, "dataLinkFrameSize": len(frame),
               "dataLinkFrameSection": frame[:snaplen]}
        try:
            msg.export_ensure_set(DATA_TID)
            msg.export_namedict(rec)
        except ipfix.message.EndOfMessage:
            flush()
            msg.export_ensure_set(DATA_TID)
            msg.export_namedict(rec)
        records += 1
    flush()
    print("exported %d records in %d messages" % (records, messages))


if __name__ == "__main__":
    main()
