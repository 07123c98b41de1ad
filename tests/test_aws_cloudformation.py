"""Issue 12: the CloudFormation templates in deploy/aws/cloudformation, created as stacks on moto's
server (127.0.0.1), and the resources and settings they make checked.

moto's CloudFormation does not run the AWS::LanguageExtensions transform, and it does not model
AWS::Logs::SubscriptionFilter, AWS::Logs::AccountPolicy, AWS::KinesisFirehose::DeliveryStream nor
Application Auto Scaling (it skips them with a warning). So the test drops the Transform line and the
Fn::ForEach block (which only makes subscription filters) before creating a stack, and the outputs of
firehose.yaml (moto fails on outputs of a resource it does not model); cfn-lint in
.ci/run checks the templates whole. What moto does model is checked here."""

from __future__ import annotations

import io
import json
import re
import socket
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from relay.config import ServerConfig
from tests.conftest import ROOT

CFN = ROOT / "deploy" / "aws" / "cloudformation"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        yield client
    finally:
        server.stop()


def for_moto(name: str, drop_outputs: bool = False) -> str:
    text = (CFN / name).read_text()
    if drop_outputs:  # outputs of a resource moto does not model make its create_stack fail
        text = text[: text.index("\nOutputs:\n") + 1]
    text = re.sub(r"(?m)^Transform: AWS::LanguageExtensions\n", "", text)
    # Fn::ForEach::X: and its indented body, up to the next resource at two spaces.
    text = re.sub(r"(?m)^  Fn::ForEach::\w+:\n(?:(?:    .*|[ ]*)\n)*", "", text)
    assert "Fn::ForEach" not in text and "LanguageExtensions" not in text
    return text


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, read as their long forms (!Ref x -> {"Ref": "x"})."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {("Condition" if suffix == "Condition" else f"Fn::{suffix}"): value}


CfnLoader.add_multi_constructor("!", _tag)


def template(name: str) -> dict[str, Any]:
    return yaml.load((CFN / name).read_text(), Loader=CfnLoader)  # noqa: S506  (SafeLoader subclass)


def create(client: Any, name: str, template: str, params: dict[str, str]) -> dict[str, str]:
    cfn = client("cloudformation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto's "not supported" warnings for the types named above
        cfn.create_stack(
            StackName=name, TemplateBody=template,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    resources = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def function_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("relay/__init__.py", "")
    return buf.getvalue()


def test_lambda_template_direct_mode_with_sqs_and_eventbridge(aws: Any) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="artefacts")
    s3.put_object(Bucket="artefacts", Key="fn/lambda.zip", Body=function_zip())
    params = {
        "Mode": "direct", "WriteAddress": "https://loki.example.test/loki/api/v1/push",
        "Username": "u", "Password": "p", "TenantID": "team-a", "KeepStream": "true",
        "ExtraLabels": "env,prod", "Architecture": "arm64", "S3BucketName": "artefacts",
        "S3KeyName": "fn/lambda.zip", "LogGroupNames": "/aws/lambda/a,/aws/lambda/b",
        "EventSourceS3Bucket": "logs-bucket", "EventSourceS3PrefixKey": "AWSLogs/",
        "SqsEnabled": "true", "SqsQueueNamePrefix": "lr",
        "LokiStageConfigs": '[{"json": {"expressions": {"level": "lvl"}}}, {"labels": {"level": ""}}]',
        "PipelineTimeout": "250ms",
    }
    made = create(aws, "lr-direct", for_moto("lambda.yaml"), params)
    for logical in ("LambdaPromtailRole", "LambdaPromtailFunction", "FailedEventsQueue", "MainQueue",
                    "DeadLetterQueue", "EventRule", "ReadQueuePolicy", "ReadLogObjectsPolicy", "CredentialsPolicy"):
        assert logical in made, f"{logical} not created"
    # Who may invoke the function: CloudWatch Logs of this account, and the EventBridge rule.
    policy = json.loads(aws("lambda").get_policy(FunctionName="lr-direct")["Policy"])
    principals = sorted(st["Principal"]["Service"] for st in policy["Statement"])
    assert principals == ["events.amazonaws.com", "logs.amazonaws.com"]

    fn = aws("lambda").get_function(FunctionName="lr-direct")["Configuration"]
    assert fn["Handler"] == "relay.aws.lambda_handler.handler"
    assert fn["Runtime"] == "python3.12"
    # moto's CloudFormation drops Architectures and DeadLetterConfig: read them from the template.
    props = template("lambda.yaml")["Resources"]["LambdaPromtailFunction"]["Properties"]
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}}
    env = fn["Environment"]["Variables"]
    assert env["WRITE_ADDRESS"] == "https://loki.example.test/loki/api/v1/push"
    assert (env["USERNAME"], env["PASSWORD"], env["TENANT_ID"]) == ("u", "p", "team-a")
    assert (env["KEEP_STREAM"], env["EXTRA_LABELS"], env["PRINT_LOG_LINE"]) == ("true", "env,prod", "true")
    assert (env["LOKI_STAGE_CONFIGS"], env["PIPELINE_TIMEOUT"]) == (params["LokiStageConfigs"], "250ms")
    assert not any(k.startswith("RELAY_") for k in env)
    # Every variable the template sets in direct mode is one the handler reads.
    handler = (ROOT / "relay" / "aws" / "lambda_handler.py").read_text()
    for key in env:
        assert f'env.get("{key}"' in handler or f'_bool(env, "{key}"' in handler, f"the handler never reads {key}"

    sqs = aws("sqs")
    main = sqs.get_queue_url(QueueName="lr-main-queue")["QueueUrl"]
    dead = sqs.get_queue_url(QueueName="lr-dead-letter-queue")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=main, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert redrive["deadLetterTargetArn"] == dead_arn and int(redrive["maxReceiveCount"]) == 5
    mapping = aws("lambda").get_event_source_mapping(UUID=made["QueueEventSourceMapping"])
    assert mapping["EventSourceArn"] == attrs["QueueArn"] and mapping["FunctionArn"] == fn["FunctionArn"]
    assert mapping["BatchSize"] == 10

    rule = aws("events").describe_rule(Name=made["EventRule"].split("/")[-1].split("|")[0])
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["bucket"]["name"] == ["logs-bucket"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "AWSLogs/"}]


def test_lambda_template_forwarder_mode(aws: Any) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="artefacts-fwd")
    s3.put_object(Bucket="artefacts-fwd", Key="lambda.zip", Body=function_zip())
    made = create(aws, "lr-forwarder", for_moto("lambda.yaml"), {
        "Mode": "forwarder", "RelayUrl": "https://relay.example.test/awslambda/api/v1/push",
        "BearerToken": "t", "S3BucketName": "artefacts-fwd", "S3KeyName": "lambda.zip",
        "LogGroupToSubscribe": "/aws/lambda/one",
    })
    assert "MainQueue" not in made and "EventRule" not in made and "CredentialsPolicy" not in made
    fn = aws("lambda").get_function(FunctionName="lr-forwarder")["Configuration"]
    assert fn["Handler"] == "relay.aws.forwarder.handler"
    env = fn["Environment"]["Variables"]
    assert env["RELAY_URL"] == "https://relay.example.test/awslambda/api/v1/push"
    assert env["RELAY_BEARER_TOKEN"] == "t" and "WRITE_ADDRESS" not in env


def test_firehose_template_backup_bucket_and_roles(aws: Any) -> None:
    made = create(aws, "lr-firehose", for_moto("firehose.yaml", drop_outputs=True), {
        "FirehoseUrl": "https://relay.example.test/awsfirehose/api/v1/push",
        "AccessKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:relay-key",
        "ExtraLabels": "env,prod,team,a", "TenantID": "t1", "LogGroupNames": "/aws/lambda/a",
    })
    for logical in ("BackupBucket", "FirehoseRole", "LogsToFirehoseRole", "DeliveryLogGroup"):
        assert logical in made
    s3 = aws("s3")
    bucket = made["BackupBucket"]
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # moto's CloudFormation drops the public access block, versioning and lifecycle: read them.
    props = template("firehose.yaml")["Resources"]["BackupBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30
    block = props["PublicAccessBlockConfiguration"]
    assert len(block) == 4 and all(v is True for v in block.values())
    iam = aws("iam")
    trust = iam.get_role(RoleName=made["LogsToFirehoseRole"])["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "logs.amazonaws.com"}


def test_firehose_template_delivery_stream_settings() -> None:
    """moto does not model the delivery stream: read what the template asks of it."""
    t = template("firehose.yaml")
    http = t["Resources"]["DeliveryStream"]["Properties"]["HttpEndpointDestinationConfiguration"]
    assert http["EndpointConfiguration"]["Url"] == {"Ref": "FirehoseUrl"}
    assert http["SecretsManagerConfiguration"]["SecretARN"] == {"Ref": "AccessKeySecretArn"}
    assert http["S3BackupMode"] == "FailedDataOnly"
    assert http["BufferingHints"] == {"SizeInMBs": {"Ref": "BufferingSizeMiB"},
                                      "IntervalInSeconds": {"Ref": "BufferingIntervalSeconds"}}
    attrs = http["RequestConfiguration"]["CommonAttributes"]
    names = [a["Fn::If"][1]["AttributeName"] for a in attrs]
    assert names[-1] == "tenant_id" and len(names) == 5
    for i, n in enumerate(names[:-1]):  # lbl_<name of pair i>, value = the element after it
        assert n["Fn::Sub"][0] == "lbl_${N}" and n["Fn::Sub"][1]["N"]["Fn::Select"][0] == 2 * i
        assert attrs[i]["Fn::If"][1]["AttributeValue"]["Fn::Select"][0] == 2 * i + 1
    assert t["Parameters"]["FirehoseUrl"]["AllowedPattern"].startswith("^https://")


def test_relay_ecs_template(aws: Any) -> None:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    cert = aws("acm").request_certificate(DomainName="relay.example.test")["CertificateArn"]
    made = create(aws, "lr-relay", (CFN / "relay-ecs.yaml").read_text(), {
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/loki-relay:1", "VpcId": vpc,
        "AlbSubnetIds": ",".join(subnets), "TaskSubnetIds": ",".join(subnets),
        "CertificateArn": cert,
        "LokiUrl": "https://loki.example.test/loki/api/v1/push",
        "FirehoseAccessKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:relay-key",
    })
    elb = aws("elbv2")
    lb = elb.describe_load_balancers(LoadBalancerArns=[made["LoadBalancer"]])["LoadBalancers"][0]
    listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert [(x["Port"], x["Protocol"]) for x in listener] == [(443, "HTTPS")]
    assert listener[0]["Certificates"][0]["CertificateArn"] == cert
    for logical, port in (("PushTargetGroup", 3500), ("LambdaTargetGroup", 3600), ("FirehoseTargetGroup", 3700)):
        tg = elb.describe_target_groups(TargetGroupArns=[made[logical]])["TargetGroups"][0]
        assert (tg["Port"], tg["HealthCheckPath"], tg["HealthCheckPort"]) == (port, "/ready", "9080")
        # moto's CloudFormation drops TargetGroupAttributes: read the template.
        attrs = template("relay-ecs.yaml")["Resources"][logical]["Properties"]["TargetGroupAttributes"]
        assert attrs == [{"Key": "deregistration_delay.timeout_seconds", "Value": {"Ref": "DrainSeconds"}}]
    params = template("relay-ecs.yaml")["Parameters"]
    # The relay's own defaults (relay/config.py): the drain the ALB waits out, then the stop timeout.
    server = ServerConfig()
    assert params["ShutdownDelay"]["Default"] == f"{server.shutdown_delay:g}s"
    assert params["GracefulShutdownTimeout"]["Default"] == f"{server.graceful_shutdown_timeout:g}s"
    assert params["DrainSeconds"]["Default"] == server.shutdown_delay + server.graceful_shutdown_timeout
    assert params["StopTimeoutSeconds"]["Default"] == params["DrainSeconds"]["Default"] + 10
    relay_def = template("relay-ecs.yaml")["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][1]
    assert relay_def["StopTimeout"] == {"Ref": "StopTimeoutSeconds"}
    task_env = {e["Name"]: e["Value"] for e in relay_def["Environment"]}
    assert task_env["RELAY_SHUTDOWN_DELAY"] == {"Ref": "ShutdownDelay"}
    assert task_env["RELAY_GRACEFUL_SHUTDOWN_TIMEOUT"] == {"Ref": "GracefulShutdownTimeout"}
    rules = elb.describe_rules(ListenerArn=listener[0]["ListenerArn"])["Rules"]
    paths = sorted((c.get("Values") or c["PathPatternConfig"]["Values"])[0] for r in rules for c in r.get("Conditions", []) if c.get("Field") == "path-pattern")
    assert paths == ["/awsfirehose/*", "/awslambda/*"]

    ecs = aws("ecs")
    td = ecs.describe_task_definition(taskDefinition=made["TaskDefinition"])["taskDefinition"]
    relay = next(c for c in td["containerDefinitions"] if c["name"] == "relay")
    env = {e["name"]: e["value"] for e in relay["environment"]}
    assert "basic_auth" not in env["RELAY_CONFIG"]  # no LokiPasswordSecretArn given
    assert env["LOKI_URL"] == "https://loki.example.test/loki/api/v1/push"
    assert {m["containerPath"] for m in relay["mountPoints"]} == {"/var/lib/loki-relay/wal", "/tmp"}
    secrets = {s["name"]: s["valueFrom"] for s in relay["secrets"]}
    assert secrets["FIREHOSE_ACCESS_KEY"].endswith("secret:relay-key:api_key::")
    svc = ecs.describe_services(cluster=made["Cluster"], services=[made["Service"]])["services"][0]
    assert svc["taskDefinition"] == td["taskDefinitionArn"]
    # moto's CloudFormation drops the service's LoadBalancers: read the template.
    lbs = template("relay-ecs.yaml")["Resources"]["Service"]["Properties"]["LoadBalancers"]
    assert sorted((x["ContainerPort"], x["TargetGroupArn"]["Ref"]) for x in lbs) == [
        (3500, "PushTargetGroup"), (3600, "LambdaTargetGroup"), (3700, "FirehoseTargetGroup")]


def test_relay_ecs_template_config_is_deploy_aws_relay_ecs_yaml() -> None:
    """The config inlined in the template (CloudFormation cannot read files) is the shared one."""
    relay = template("relay-ecs.yaml")["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][1]
    sub = next(e["Value"]["Fn::Sub"] for e in relay["Environment"] if e["Name"] == "RELAY_CONFIG")
    text = sub[0].replace("${!", "${").replace("${Auth}", "")
    assert yaml.safe_load(text) == yaml.safe_load((ROOT / "deploy" / "aws" / "relay-ecs.yaml").read_text())
    auth = sub[1]["Auth"]["Fn::If"][1]["Fn::Join"][1]
    with_auth = yaml.safe_load(sub[0].replace("${!", "${").replace("${Auth}", "".join(auth)))
    assert with_auth["clients"][0]["basic_auth"] == {"username": "${LOKI_USERNAME}", "password": "${LOKI_PASSWORD}"}
