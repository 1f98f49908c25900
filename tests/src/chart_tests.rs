//! The chart emulation's own pure parts: Helm's coalescing, the template
//! subset with its whitespace trimming, the tests' charts rendered with a
//! values fragment, and the API server's refusals.

use k8s_openapi::api::core::v1::PodSpec;

use super::*;

fn yaml(s: &str) -> Value {
    serde_yaml_ng::from_str(s).expect("test YAML")
}

fn render_template(template: &str, values: &str) -> Result<String, String> {
    let mut root = Mapping::new();
    root.insert("Values".into(), yaml(values));
    let root = Value::Mapping(root);
    let nodes = parse(&tokens(template).map_err(|e| e.0)?)?;
    let mut out = String::new();
    exec(&nodes, &root, &root, &mut out)?;
    Ok(out)
}

fn app_values(image: &str) -> String {
    format!("image: {image}\n")
}

fn spec(rendered: &str) -> PodSpec {
    crate::kubelet::pod_spec(rendered).unwrap_or_else(|e| panic!("expected a pod spec: {e}"))
}

#[test]
fn layers_coalesce_as_helm_does() {
    let base = yaml("a: {x: 1, y: [1, 2], z: keep}\nb: 1\ngone: 1\n");
    let over = yaml("a: {x: 2, y: [3]}\nc: new\ngone: null\n");
    assert_eq!(
        coalesce(base, over),
        yaml("a: {x: 2, y: [3], z: keep}\nb: 1\nc: new\n"),
        "maps merge, lists and scalars are replaced, null deletes"
    );
}

#[test]
fn trimming_blocks_and_functions() {
    let t = "a:\n  {{- with .Values.l }}\n  {{- toYaml . | nindent 2 }}\n  {{- end }}\nb: {{ .Values.s }}\nc: {{ .Values.missing }}\n{{- if .Values.off }}\nnever\n{{- end }}\nd: {{- omit .Values.m \"enabled\" | toYaml | nindent 2 }}\n";
    let out = render_template(
        t,
        "l: [x, y]\ns: text\noff: false\nm: {enabled: true, k: v}\n",
    )
    .expect("renders");
    assert_eq!(out, "a:\n  - x\n  - y\nb: text\nc: \nd:\n  k: v\n");
    let empty = render_template(t, "l: []\ns: t\nm: {enabled: true}\n").expect("renders");
    assert!(empty.starts_with("a:\nb: t\n"), "{empty:?}");
}

#[test]
fn unknown_constructs_are_refused() {
    for t in [
        "{{ range .Values.l }}x{{ end }}",
        "{{ include \"x\" . }}",
        "{{ if .Values.a }}x{{ else }}y{{ end }}",
        "{{ .Values.l | quote }}",
        "{{ .Values.l }}",
        "{{ if .Values.a }}x",
        "{{ end }}",
    ] {
        let e = render_template(t, "l: [1]\na: true\n").expect_err(t);
        assert!(
            e.contains("not emulated") || e.contains("end") || e.contains("never closed"),
            "{t}: {e}"
        );
    }
}

#[test]
fn the_app_chart_puts_the_fragment_where_bitnami_does() {
    let chart = Chart::load(&fixture("app")).expect("the app chart loads");
    let fragment = "containerSecurityContext: {readOnlyRootFilesystem: true}\n\
                    extraVolumes: [{name: v, emptyDir: {medium: Memory}}]\n\
                    extraVolumeMounts: [{name: v, mountPath: /run}]\n\
                    initContainers: [{name: init-v, image: img, command: [sh, -c, 'true']}]\n";
    let out = chart
        .render(&[fragment, &app_values("img")])
        .expect("renders");
    let s = spec(&out);
    let inits: Vec<&str> = s
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, ["init-v", "chart-prepare"], "values' first:\n{out}");
    let app = &s.containers[0];
    assert_eq!(app.image.as_deref(), Some("img"));
    let sc = app.security_context.clone().expect("securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true), "{out}");
    assert!(
        !out.contains("enabled"),
        "`enabled` is the chart's switch:\n{out}"
    );
    let mounts: Vec<&str> = app
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, ["/opt/chart/tmp", "/run"], "appended:\n{out}");
    let vols: Vec<&str> = s
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(vols, ["empty-dir", "v"], "appended:\n{out}");

    let bare = chart.render(&[&app_values("img")]).expect("renders");
    let s = spec(&bare);
    assert_eq!(
        s.containers[0]
            .security_context
            .as_ref()
            .and_then(|c| c.read_only_root_filesystem),
        Some(false),
        "the chart's default without the fragment:\n{bare}"
    );
}

#[test]
fn the_server_chart_reads_the_fragment_under_server() {
    let chart = Chart::load(&fixture("server")).expect("the server chart loads");
    let prefixed = "server:\n  containerSecurityContext: {readOnlyRootFilesystem: true}\n  \
                    extraVolumes: [{name: v, emptyDir: {}}]\n  \
                    extraVolumeMounts: [{name: v, mountPath: /data}]\n";
    let out = chart
        .render(&[prefixed, "server: {image: img}\n"])
        .expect("renders");
    let s = spec(&out);
    assert_eq!(
        s.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect::<Vec<_>>(),
        ["/opt/chart/tmp", "/data"]
    );
    let top = "extraVolumes: [{name: v, emptyDir: {}}]\n\
               extraVolumeMounts: [{name: v, mountPath: /data}]\n";
    let out = chart
        .render(&[top, "server: {image: img}\n"])
        .expect("renders");
    assert!(
        !out.contains("/data"),
        "a fragment without the prefix does not reach the server:\n{out}"
    );
}

#[test]
fn the_api_server_refusals_a_fragment_can_cause() {
    let chart = Chart::load(&fixture("app")).expect("the app chart loads");
    for (fragment, want) in [
        (
            "extraVolumes: [{name: v, emptyDir: {}}]\n\
             extraVolumeMounts: [{name: v, mountPath: /opt/chart/tmp}]\n",
            "mountPath: Invalid value: \"/opt/chart/tmp\": must be unique",
        ),
        (
            "extraVolumes: [{name: empty-dir, emptyDir: {}}]\n",
            "volumes[1].name: Duplicate value",
        ),
        (
            "extraVolumeMounts: [{name: nowhere, mountPath: /x}]\n",
            "name: Not found: \"nowhere\"",
        ),
        (
            "initContainers: [{name: chart-prepare, image: i}]\n",
            "initContainers[1].name: Duplicate value",
        ),
    ] {
        let e = chart
            .render(&[fragment, &app_values("img")])
            .expect_err(fragment)
            .0;
        assert!(e.contains(want), "expected {want:?}: {e}");
    }
}
