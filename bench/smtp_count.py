"""An SMTP server on loopback that counts what a receiving server's limits
look at: sessions open at once (a session ends with its QUIT or its
connection), messages in any one second, and each recipient's messages.
Accepts everything, keeps nothing. When it has received N messages it
writes its figures as JSON to OUT and exits.
Usage: smtp_count.py PORT N OUT"""
import asyncio, bisect, json, sys, time

port, want, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
open_now = 0
most_open = 0
arrivals = []
recipients = {}
done = asyncio.Event()


def close_session(state):
    global open_now
    if state["open"]:
        state["open"] = False
        open_now -= 1


async def session(reader, writer):
    global open_now, most_open
    state = {"open": True}
    open_now += 1
    most_open = max(most_open, open_now)
    writer.write(b"220 count ESMTP\r\n")
    rcpt, data = None, False
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if data:
                if line == b".\r\n":
                    data = False
                    arrivals.append(time.monotonic())
                    recipients[rcpt] = recipients.get(rcpt, 0) + 1
                    writer.write(b"250 2.0.0 ok\r\n")
                    if len(arrivals) >= want:
                        done.set()
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-count\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT":
                rcpt = line.split(b"<", 1)[-1].split(b">", 1)[0].decode("ascii", "replace").lower()
                writer.write(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                data = True
                writer.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                close_session(state)
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 2.0.0 ok\r\n")
            await writer.drain()
    finally:
        close_session(state)
        writer.close()


def busiest_second(times):
    """The most arrivals within one second, over windows starting a second
    or more after the first arrival (a burst at the start is allowed)."""
    times = sorted(times)
    if not times:
        return 0
    most = 0
    for i, t in enumerate(times):
        if t >= times[0] + 1.0:
            most = max(most, bisect.bisect_left(times, t + 1.0) - i)
    return most


async def main():
    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await done.wait()
    figures = {
        "messages": len(arrivals),
        "recipients": len(recipients),
        "repeated": sum(1 for n in recipients.values() if n > 1),
        "most_sessions": most_open,
        "busiest_second": busiest_second(arrivals),
        "seconds": arrivals[-1] - arrivals[0] if arrivals else 0,
    }
    with open(out, "w") as f:
        json.dump(figures, f)


asyncio.run(main())
