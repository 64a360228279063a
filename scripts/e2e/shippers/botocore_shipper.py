"""A long-running shipper on botocore, the SDK of Splunk's AWS add-on: one S3
client built once with botocore's default credential chain lists the bucket
every second and appends one line per listing to the log given as argument:
start and end in Unix milliseconds, ok or fail, and the error code (or -).
The endpoint and path style reach the simulator; the credentials are
untouched."""
import os
import sys
import time

import botocore.config
import botocore.exceptions
import botocore.session


def main(log_path):
    session = botocore.session.get_session()
    client = session.create_client(
        "s3",
        region_name=os.environ["E2E_REGION"],
        endpoint_url=os.environ["E2E_S3_ENDPOINT"],
        config=botocore.config.Config(
            s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}
        ),
    )
    bucket, prefix = os.environ["E2E_BUCKET"], os.environ["E2E_PREFIX"] + "/"
    log = open(log_path, "a", buffering=1)
    nxt = time.time()
    while True:
        time.sleep(max(0, nxt - time.time()))
        nxt += 1
        start = time.time()
        detail = "-"
        try:
            client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        except botocore.exceptions.ClientError as e:
            detail = e.response.get("Error", {}).get("Code", "error")
        except Exception as e:  # a credential_process failure, for one
            detail = type(e).__name__
        end = time.time()
        result = "ok" if detail == "-" else "fail"
        log.write("%d %d %s %s\n" % (start * 1000, end * 1000, result, detail))


if __name__ == "__main__":
    main(sys.argv[1])
