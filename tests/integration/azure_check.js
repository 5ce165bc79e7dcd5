// The independent Azure Blob client for the Azure integration tests: @azure/storage-blob
// talks to Azurite to read back what bao-backup wrote and to write what it must read.
//
//   AZ_CONN=<connection string> node azure_check.js <command> [args...]
//
// Commands (results as one JSON line on stdout; failures exit 1 with the message on stderr):
//   create <container>                       create the container (ok if it exists)
//   upload <container> <blob> <file> [sha]   upload a file (metadata sha256=<sha> if given)
//   download <container> <blob> <file>       download to a file; prints {size, metadata}
//   props <container> <blob>                 {exists, size, metadata, blobType}
//   blocks <container> <blob>                {committed, uncommitted} block counts
//   list <container> <prefix>                [names...]
//   listall <container> <prefix>             [names...], blobs with uncommitted blocks only
//                                            included
//   stage <container> <blob>                 stage one uncommitted block (a crashed upload)
//   overwrite <container> <blob>             replace the blob's bytes, keeping its metadata
//                                            (the recorded checksum): bit rot or tampering
//   abandon <container> <blob>               an empty blob marked abandoned, as a discard of
//                                            uncommitted blocks killed before its delete leaves
//   uncommitted <container> <prefix>         [names...] of blobs that have only uncommitted
//                                            blocks (listed only with uncommitted blobs)
//   many <container> <prefix> <n>            upload n one-byte blobs <prefix><00000..>
//   sas <container>                          a container SAS (read/add/create/write/delete/list,
//                                            one hour) as a query string
//   protected-upload <container> <blob> <file> <scope> <Unlocked|Locked> <until RFC 3339>
//                                            upload a file (one Put Blob) with encryption scope
//                                            and immutability policy, as the SDK sends them
//   sign <account> <key>                     sends one SDK request to a local capture server
//                                            and prints {method, url, headers} as sent, so a
//                                            test can compare the SharedKey signature
const http = require("http");
const fs = require("fs");
const {
  BlobServiceClient,
  StorageSharedKeyCredential,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
} = require("@azure/storage-blob");

function service() {
  return BlobServiceClient.fromConnectionString(process.env.AZ_CONN);
}

function sharedKey() {
  const parts = Object.fromEntries(
    process.env.AZ_CONN.split(";")
      .filter((p) => p.includes("="))
      .map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]),
  );
  return new StorageSharedKeyCredential(parts.AccountName, parts.AccountKey);
}

async function main(argv) {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case "create": {
      await service().getContainerClient(args[0]).createIfNotExists();
      return { ok: true };
    }
    case "upload": {
      const blob = service().getContainerClient(args[0]).getBlockBlobClient(args[1]);
      const metadata = args[3] ? { sha256: args[3] } : undefined;
      await blob.uploadFile(args[2], { metadata, blockSize: 4 * 1024 * 1024 });
      return { ok: true };
    }
    case "protected-upload": {
      const blob = service().getContainerClient(args[0]).getBlockBlobClient(args[1]);
      await blob.uploadFile(args[2], {
        encryptionScope: args[3],
        immutabilityPolicy: { policyMode: args[4], expiriesOn: new Date(args[5]) },
      });
      return { ok: true };
    }
    case "download": {
      const blob = service().getContainerClient(args[0]).getBlobClient(args[1]);
      await blob.downloadToFile(args[2]);
      const p = await blob.getProperties();
      return { size: p.contentLength, metadata: p.metadata };
    }
    case "props": {
      const blob = service().getContainerClient(args[0]).getBlobClient(args[1]);
      if (!(await blob.exists())) return { exists: false };
      const p = await blob.getProperties();
      return { exists: true, size: p.contentLength, metadata: p.metadata, blobType: p.blobType };
    }
    case "blocks": {
      const blob = service().getContainerClient(args[0]).getBlockBlobClient(args[1]);
      const l = await blob.getBlockList("all");
      return {
        committed: (l.committedBlocks || []).length,
        uncommitted: (l.uncommittedBlocks || []).length,
      };
    }
    case "list": {
      const names = [];
      for await (const b of service().getContainerClient(args[0]).listBlobsFlat({ prefix: args[1] })) {
        names.push(b.name);
      }
      return names;
    }
    case "listall": {
      const names = [];
      const c = service().getContainerClient(args[0]);
      for await (const b of c.listBlobsFlat({ prefix: args[1], includeUncommitedBlobs: true })) {
        names.push(b.name);
      }
      return names;
    }
    case "stage": {
      const blob = service().getContainerClient(args[0]).getBlockBlobClient(args[1]);
      const id = Buffer.from("block-000000").toString("base64");
      await blob.stageBlock(id, Buffer.from("partial"), 7);
      return { staged: id };
    }
    case "overwrite": {
      const blob = service().getContainerClient(args[0]).getBlockBlobClient(args[1]);
      const { metadata } = await blob.getProperties();
      const body = Buffer.from("not what was recorded");
      await blob.upload(body, body.length, { metadata });
      return { overwritten: args[1] };
    }
    case "abandon": {
      const blob = service().getContainerClient(args[0]).getBlockBlobClient(args[1]);
      await blob.commitBlockList([], { metadata: { baobackupabandoned: "true" } });
      return { abandoned: args[1] };
    }
    case "uncommitted": {
      const c = service().getContainerClient(args[0]);
      const committed = new Set();
      for await (const b of c.listBlobsFlat({ prefix: args[1] })) committed.add(b.name);
      const names = [];
      for await (const b of c.listBlobsFlat({ prefix: args[1], includeUncommitedBlobs: true })) {
        if (!committed.has(b.name)) names.push(b.name);
      }
      return names;
    }
    case "many": {
      const c = service().getContainerClient(args[0]);
      const n = parseInt(args[2], 10);
      for (let i = 0; i < n; i += 20) {
        const batch = [];
        for (let j = i; j < Math.min(n, i + 20); j++) {
          const name = args[1] + String(j).padStart(5, "0");
          batch.push(c.getBlockBlobClient(name).upload("x", 1));
        }
        await Promise.all(batch);
      }
      return { ok: true };
    }
    case "sas": {
      const sas = generateBlobSASQueryParameters(
        {
          containerName: args[0],
          permissions: ContainerSASPermissions.parse("racwdl"),
          startsOn: new Date(Date.now() - 5 * 60 * 1000),
          expiresOn: new Date(Date.now() + 60 * 60 * 1000),
        },
        sharedKey(),
      );
      return { sas: sas.toString() };
    }
    case "sign": {
      // A capture server: records the first request and answers like Get Blob Properties.
      let captured;
      const server = http.createServer((req, res) => {
        captured = { method: req.method, url: req.url, headers: req.headers };
        res.writeHead(200, { "Content-Length": "0" });
        res.end();
      });
      await new Promise((r) => server.listen(0, "127.0.0.1", r));
      const port = server.address().port;
      const cred = new StorageSharedKeyCredential(args[0], args[1]);
      const url = `http://127.0.0.1:${port}/${args[0]}`;
      const client = new BlobServiceClient(url, cred);
      try {
        await client.getContainerClient("sig-container").getBlobClient("dir/a b+c.snap")
          .getProperties();
      } catch (e) {
        // The capture server's answer need not satisfy the SDK.
      }
      server.close();
      return captured;
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

main(process.argv.slice(2)).then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
  },
  (err) => {
    process.stderr.write(String(err && err.message ? err.message : err) + "\n");
    process.exit(1);
  },
);
