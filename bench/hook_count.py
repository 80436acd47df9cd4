"""A webhook receiver on loopback that answers 204 to every POST and counts
them; when it has N, it writes the seconds from the first to the Nth as
JSON to OUT and exits. Usage: hook_count.py PORT N OUT"""
import asyncio, json, sys, time

port, want, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
got = 0
first = None
done = asyncio.Event()


async def session(reader, writer):
    global got, first
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if head.startswith(b"POST"):
                got += 1
                if first is None:
                    first = time.monotonic()
                if got == want:
                    json.dump({"events": got, "seconds": time.monotonic() - first}, open(out, "w"))
                    done.set()
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await done.wait()


asyncio.run(main())
