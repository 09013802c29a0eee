"""A minimal SMTP sink for the benchmarks, meant to run in its own process:

    python bench/sink.py PORT

It accepts every message and keeps none (it counts them), so that the process sending
is what a benchmark measures, not the server. It speaks just enough ESMTP for smtplib
(EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; 8BITMIME, SMTPUTF8, PIPELINING; no TLS, no
AUTH, no size limit) and handles each command in a few microseconds. On SIGTERM it
prints what it received and exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys

EHLO = b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
END = b"\r\n.\r\n"


class Totals:
    messages = 0
    bytes = 0
    connections = 0


class SinkProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        Totals.connections += 1
        self.transport = transport
        self.buffer = b""
        self.in_data = False
        self.tail = b""
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        while data:
            if self.in_data:
                data = self._message_bytes(data)
                continue
            self.buffer += data
            data = b""
            while not self.in_data and b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                self._command(line)
            if self.in_data:
                data, self.buffer = self.buffer, b""

    def _message_bytes(self, data: bytes) -> bytes:
        """Consume message data; returns what follows the end of the message."""
        window = self.tail + data
        end = window.find(END)
        if end < 0:
            Totals.bytes += len(data)
            self.tail = window[-4:]
            return b""
        rest = window[end + len(END) :]
        Totals.bytes += len(data) - len(rest)
        Totals.messages += 1
        self.in_data, self.tail = False, b""
        self.transport.write(b"250 OK queued\r\n")
        return rest

    def _command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.transport.write(EHLO)
        elif verb == b"DATA":
            self.in_data, self.tail = True, b"\r\n"
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 Bye\r\n")
            self.transport.close()
        else:  # HELO, MAIL, RCPT, RSET, NOOP
            self.transport.write(b"250 OK\r\n")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await stop
    print(
        f"received {Totals.messages} messages, {Totals.bytes} bytes, "
        f"{Totals.connections} connections",
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
