"""An SMTP server on loopback that keeps every message it receives as a
file (the tracking benchmark needs the links of delivered messages).
Usage: smtp_keep.py PORT DIR"""
import asyncio, os, sys

port, out = int(sys.argv[1]), sys.argv[2]
count = 0


async def session(reader, writer):
    global count
    writer.write(b"220 keep ESMTP\r\n")
    data = None
    while True:
        line = await reader.readline()
        if not line:
            break
        if data is not None:
            if line == b".\r\n":
                count += 1
                with open(os.path.join(out, f"{count}.eml"), "wb") as f:
                    f.write(b"".join(data))
                data = None
                writer.write(b"250 2.0.0 kept\r\n")
            else:
                data.append(line[1:] if line.startswith(b"..") else line)
            continue
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(b"250-keep\r\n250 PIPELINING\r\n")
        elif verb == b"DATA":
            data = []
            writer.write(b"354 go on\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await server.serve_forever()

asyncio.run(main())
