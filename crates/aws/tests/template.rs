//! The SAM template, read by tools Vellum did not write: cfn-lint finds nothing, and the
//! template's own rules hold (least privilege, a dead-letter queue for every queue,
//! per-message failures on every SQS mapping, a queue per stage).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project's Python, with cfn-lint (scripts/setup installs it).
fn python() -> String {
    std::env::var("VELLUM_PYTHON").expect("VELLUM_PYTHON: run the tests through scripts/test, which sets up .venv")
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(python()).args(args).current_dir(root()).output().expect("run the project's Python");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
#[ignore = "needs the project's Python with cfn-lint; scripts/test runs it"]
fn cfn_lint_finds_nothing_in_the_template() {
    let cfn_lint = Path::new(&python()).with_file_name("cfn-lint");
    let out = Command::new(&cfn_lint).arg("template.yaml").current_dir(root()).output().expect("run cfn-lint");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cfn-lint:\n{said}");
}

#[test]
#[ignore = "needs the project's Python with cfn-lint; scripts/test runs it"]
fn the_template_keeps_least_privilege_flow_control_and_what_is_preserved() {
    let (ok, said) = run(&["infra/check_template.py", "template.yaml"]);
    assert!(ok, "{said}");
    // The checker finds what it is for.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        r#"Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Environment:
      Variables:
        VELLUM_AIPS_BUCKET: !Ref LooseBucket
Resources:
  LooseFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
      Events:
        Queue:
          Type: SQS
          Properties: { Queue: !GetAtt LonelyQueue.Arn }
      Policies:
        - Statement:
            - { Effect: Allow, Action: "s3:*", Resource: "*" }
  LonelyQueue:
    Type: AWS::SQS::Queue
    Properties: { QueueName: vellum-extract }
  LonelyDeadLetterQueue:
    Type: AWS::SQS::Queue
    Properties: { QueueName: vellum-extract-dlq }
  AgelessQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: vellum-scan
      RedrivePolicy: { deadLetterTargetArn: !GetAtt LonelyDeadLetterQueue.Arn, maxReceiveCount: 5 }
  LooseBucket:
    Type: AWS::S3::Bucket
  LooseTable:
    Type: AWS::DynamoDB::Table
    Properties:
      LocalSecondaryIndexes:
        - IndexName: by-path
          KeySchema: [{ AttributeName: pk, KeyType: HASH }, { AttributeName: path, KeyType: RANGE }]
          Projection: { ProjectionType: ALL }
  OpenApi:
    Type: AWS::Serverless::HttpApi
  CharacterizeFunction:
    Type: AWS::Serverless::Function
    Metadata: { Dockerfile: Dockerfile.bare, DockerContext: . }
    Properties:
      PackageType: Image
  DashboardFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: functions/dashboard
      Events:
        Everyone:
          Type: HttpApi
          Properties: { ApiId: !Ref OpenApi }
      Policies:
        - Statement:
            - { Effect: Allow, Action: "dynamodb:Query", Resource: "arn:aws:dynamodb:eu-west-1:1:table/t" }
  DashboardErrors:
    Type: AWS::CloudWatch::Alarm
    Properties:
      MetricName: Errors
      Namespace: AWS/Lambda
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      Dimensions: [{ Name: FunctionName, Value: !Ref DashboardFunction }]
  TaskRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]
      Policies:
        - PolicyName: all
          PolicyDocument:
            Statement:
              - { Effect: Allow, Action: "logs:*", Resource: "*" }
"#,
    )
    .unwrap();
    // An image without the characterization tools.
    std::fs::write(dir.path().join("Dockerfile.bare"), "FROM public.ecr.aws/lambda/provided:al2023-arm64\n").unwrap();
    let (ok, said) = run(&["infra/check_template.py", bad.to_str().unwrap()]);
    assert!(!ok, "a loose template passes: {said}");
    for problem in [
        "the action 's3:*' is a wildcard",
        "the resource '*' is a wildcard",
        "no ReportBatchItemFailures",
        "a queue without a dead-letter queue",
        "no queue for the store stage",
        "LooseFunction: no alarm on its errors",
        "TaskRole: the action 'logs:*' is a wildcard",
        "TaskRole: a managed policy",
        "the dashboard is not behind an HTTP API whose default authorizer is a JWT authorizer",
        "no monitor function on a schedule",
        "LooseFunction.Queue: no maximum concurrency",
        "LooseFunction: continues through its own queue without RecursiveLoop: Allow",
        "LooseFunction: no log group with a retention",
        "LonelyDeadLetterQueue: a dead-letter queue without an alarm",
        "LooseBucket: preserved bytes not retained",
        "LooseBucket: no bucket policy refusing requests without TLS",
        "LooseTable: the table is not retained",
        "LooseBucket: the AIP bucket is not versioned",
        "LooseBucket: the AIP bucket is not under Object Lock",
        "LooseBucket: the AIP bucket is not encrypted with a customer-managed KMS key that rotates",
        "no second storage location for the AIPs",
        "LooseTable: a local secondary index caps each partition's items at 10 GB",
        "LooseFunction.Queue: no alarm on its batch-item failures",
        "LooseFunction: no alarm on its throttles",
        "AgelessQueue: no alarm on the age of its oldest message",
        "LooseFunction: not built by its Makefile",
        "CharacterizeFunction: the image does not pin ExifTool",
        "CharacterizeFunction: the image's build does not run MediaInfo once",
    ] {
        assert!(said.contains(problem), "{problem:?} not found in:\n{said}");
    }
}

/// Least privilege, written from the code: each function's role (as CloudFormation resolves
/// template.yaml, beside AWS's managed policies) allows exactly the calls `infra/calls.json`
/// lists for it, no more and no fewer. The emulator flows, IAM enforced, show the list is
/// enough; this shows nothing beyond it is granted.
#[test]
#[ignore = "needs the project's Python with cfn-lint; scripts/test runs it"]
fn each_role_allows_exactly_the_calls_its_function_makes() {
    use std::collections::BTreeSet;
    let (ok, said) = run(&["infra/local/iam.py", "--show-policies"]);
    assert!(ok, "{said}");
    let policies: serde_json::Value = serde_json::from_str(&said).expect("the resolved policies as JSON");
    let calls: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("infra/calls.json")).unwrap()).unwrap();
    let calls = calls["functions"].as_object().expect("functions");
    let policies = policies.as_object().unwrap();
    assert_eq!(
        policies.keys().collect::<BTreeSet<_>>(),
        calls.keys().collect::<BTreeSet<_>>(),
        "a calls list for every function"
    );
    let managed = ["logs:", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];
    let mut wrong = Vec::new();
    for (function, policy) in policies {
        let mut granted = BTreeSet::new();
        for statement in policy["Statement"].as_array().unwrap() {
            let list = |v: &serde_json::Value| match v {
                serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>(),
                v => vec![v.as_str().unwrap().to_string()],
            };
            assert_eq!(statement["Effect"], "Allow", "{function}: only Allow statements");
            for action in list(&statement["Action"]) {
                for resource in list(&statement["Resource"]) {
                    // AWS's managed policies (logs, the SQS poller): not ours to narrow.
                    if resource == "*" && managed.iter().any(|m| action.starts_with(m)) {
                        continue;
                    }
                    granted.insert(format!("{action} {resource}"));
                }
            }
        }
        let listed: BTreeSet<String> =
            calls[function].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        for extra in granted.difference(&listed) {
            wrong.push(format!("{function} is granted {extra}, which its code does not call"));
        }
        for missing in listed.difference(&granted) {
            wrong.push(format!("{function} calls {missing}, which its role does not allow"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // What no role but the named may do.
    let granted_to = |needle: &str| -> Vec<String> {
        calls.iter().filter(|(_, c)| c.to_string().contains(needle)).map(|(f, _)| f.clone()).collect()
    };
    assert_eq!(
        granted_to("s3:PutObject arn:aws:s3:::vellum-local-aips/"),
        vec!["StoreFunction"],
        "only store writes AIPs"
    );
    assert!(granted_to("s3:DeleteObject arn:aws:s3:::vellum-local-aips").is_empty(), "nobody deletes an AIP");
    assert_eq!(
        granted_to("table/vellum-local-access"),
        vec!["DashboardFunction"],
        "only the dashboard reaches users and keys"
    );
    let dashboard: Vec<String> =
        calls["DashboardFunction"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    let sends: Vec<&String> = dashboard.iter().filter(|c| c.starts_with("sqs:SendMessage ")).collect();
    assert_eq!(
        sends,
        vec!["sqs:SendMessage arn:aws:sqs:eu-west-1:123456789012:vellum-local-start"],
        "the dashboard sends to the start queue only"
    );
    assert!(
        !dashboard.iter().any(|c| c.starts_with("s3:DeleteObject") || c.starts_with("s3:PutObject")),
        "the dashboard writes no object"
    );
}

/// Deployable as teams deploy: `sam build && sam deploy --config-env staging|prod`, each
/// environment's parameters the template's own, every required one given, within what the
/// template allows, the same in samconfig.toml and infra/params; and a wrong one is caught.
#[test]
#[ignore = "needs the project's Python with cfn-lint; scripts/test runs it"]
fn each_environment_deploys_with_the_templates_parameters() {
    let (ok, said) = run(&["infra/check_deploy_config.py", "template.yaml", "samconfig.toml", "infra/params"]);
    assert!(ok, "{said}");
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(root().join("samconfig.toml")).unwrap();
    let broken = config.replace("\"Environment=staging\",", "\"Environment=test\",\n  \"StageConcurrenty=5\",");
    std::fs::write(dir.path().join("samconfig.toml"), broken).unwrap();
    let params = dir.path().join("params");
    std::fs::create_dir(&params).unwrap();
    std::fs::copy(root().join("infra/params/prod.json"), params.join("prod.json")).unwrap();
    let (ok, said) = run(&[
        "infra/check_deploy_config.py",
        "template.yaml",
        dir.path().join("samconfig.toml").to_str().unwrap(),
        params.to_str().unwrap(),
    ]);
    assert!(!ok);
    for problem in [
        "staging: Environment=test is not one of",
        "staging: StageConcurrenty is not a parameter of the template",
        "staging: no ",
    ] {
        assert!(said.contains(problem), "{problem:?} not in:\n{said}");
    }
}

/// The AWS model runs on the measured inputs and gives both scenarios' critical paths and
/// the cost per 1,000 files.
#[test]
#[ignore = "needs the project's Python; scripts/test runs it"]
fn the_aws_model_gives_the_critical_paths_and_the_cost() {
    let (ok, said) = run(&["scripts/aws-model"]);
    assert!(ok, "{said}");
    assert!(said.contains("100,000 files, 1 GB: critical path"), "{said}");
    assert!(said.contains("1,000,000 files, 1,000 GB: critical path"), "{said}");
    assert!(said.contains("cost per 1,000 files"), "{said}");
}

/// The characterize image installs ExifTool and MediaInfo, the normalize image ImageMagick,
/// FFmpeg, Ghostscript, Tesseract, MediaConch and (for its copies) ExifTool and MediaInfo, at the versions the test suite runs:
/// the Dockerfile's pins are the versions Debian offers this machine, which scripts/test
/// installs and the characterization tests run. When Debian moves one, this fails and says
/// which pin to move.
#[test]
fn the_tool_images_pin_the_tools_the_tests_run() {
    let pins = [
        ("characterize", "EXIFTOOL_VERSION", "libimage-exiftool-perl"),
        ("characterize", "MEDIAINFO_VERSION", "mediainfo"),
        ("normalize", "IMAGEMAGICK_VERSION", "imagemagick"),
        ("normalize", "FFMPEG_VERSION", "ffmpeg"),
        ("normalize", "GHOSTSCRIPT_VERSION", "ghostscript"),
        ("normalize", "TESSERACT_VERSION", "tesseract-ocr"),
        ("normalize", "MEDIACONCH_VERSION", "mediaconch"),
        ("normalize", "EXIFTOOL_VERSION", "libimage-exiftool-perl"),
        ("normalize", "MEDIAINFO_VERSION", "mediainfo"),
    ];
    for (function, arg, package) in pins {
        let dockerfile = std::fs::read_to_string(root().join(format!("functions/{function}/Dockerfile"))).unwrap();
        let pinned = dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ARG {arg}=")))
            .unwrap_or_else(|| panic!("the Dockerfile pins {arg}"));
        let policy = Command::new("apt-cache").args(["policy", package]).output().expect("apt-cache (Debian)");
        let text = String::from_utf8_lossy(&policy.stdout);
        let offered = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate: "))
            .unwrap_or_else(|| panic!("Debian offers no {package}: {text}"));
        assert_eq!(pinned, offered, "{arg}: the image pins {package} {pinned}, the tests run {offered}: move the pin");
    }
}
