# A long-running shipper on the AWS SDK for Ruby, the SDK of Logstash's s3
# input: one S3 client built once with the SDK's default credential chain
# lists the bucket every second and appends one line per listing to the log
# given as argument: start and end in Unix milliseconds, ok or fail, and the
# error code (or -). The endpoint and path style reach the simulator; the
# credentials are untouched.
require 'aws-sdk-s3'

log = File.open(ARGV[0], 'a')
log.sync = true
client = Aws::S3::Client.new(
  region: ENV.fetch('E2E_REGION'),
  endpoint: ENV.fetch('E2E_S3_ENDPOINT'),
  force_path_style: true,
  retry_limit: 0
)
bucket = ENV.fetch('E2E_BUCKET')
prefix = ENV.fetch('E2E_PREFIX') + '/'
nxt = Time.now.to_f
loop do
  sleep([0, nxt - Time.now.to_f].max)
  nxt += 1
  start = Time.now.to_f
  detail = '-'
  begin
    client.list_objects_v2(bucket: bucket, prefix: prefix)
  rescue Aws::S3::Errors::ServiceError => e
    detail = e.code || 'error'
  rescue StandardError => e # a credential_process failure, for one
    detail = e.class.name.split('::').last
  end
  result = detail == '-' ? 'ok' : 'fail'
  log.write(format("%d %d %s %s\n", start * 1000, Time.now.to_f * 1000, result, detail))
end
