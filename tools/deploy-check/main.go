// fedgate-deploy-check validates deploy/ offline, for the test suite (test/deploy):
//
//	fedgate-deploy-check kube [-crd FILE]... < rendered.yaml   every document of a rendered chart
//	fedgate-deploy-check compose FILE                          a compose file against the compose spec
//
// Kubernetes objects of built-in kinds are decoded strictly into the API types of k8s.io/api (through
// client-go's scheme): an unknown or duplicated field, a wrong type, an unknown kind or version fails.
// Custom resources (KEDA's ScaledObject) are checked against the openAPIV3Schema of their CRD, with
// unknown fields refused as the API server's strict field validation does. Compose files are loaded
// by compose-go, which validates them against the compose specification's JSON schema.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	sigyaml "sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: fedgate-deploy-check kube [-crd FILE]... < rendered.yaml | compose FILE"))
	}
	var err error
	switch os.Args[1] {
	case "kube":
		err = checkKube(os.Args[2:], os.Stdin)
	case "compose":
		if len(os.Args) != 3 {
			err = errors.New("compose takes one file")
		} else {
			err = checkCompose(os.Args[2])
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

type crdSchema struct {
	validator *validate.SchemaValidator
}

func checkKube(args []string, in io.Reader) error {
	crds := map[schema.GroupVersionKind]crdSchema{}
	for i := 0; i < len(args); i++ {
		if args[i] != "-crd" || i+1 >= len(args) {
			return fmt.Errorf("unexpected argument %q", args[i])
		}
		i++
		if err := loadCrd(args[i], crds); err != nil {
			return fmt.Errorf("%s: %w", args[i], err)
		}
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufioReader(in))
	var problems []string
	checked := 0
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := sigyaml.Unmarshal(doc, &head); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", checked+1, err))
			continue
		}
		name := fmt.Sprintf("%s %s/%s", head.APIVersion, head.Kind, head.Metadata.Name)
		if head.Metadata.Name == "" {
			problems = append(problems, name+": metadata.name is empty")
		}
		gvk := schema.FromAPIVersionAndKind(head.APIVersion, head.Kind)
		checked++
		if crd, ok := crds[gvk]; ok {
			var object map[string]any
			if err := sigyaml.Unmarshal(doc, &object); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			result := crd.validator.Validate(object)
			for _, e := range result.Errors {
				problems = append(problems, fmt.Sprintf("%s: %v", name, e))
			}
			continue
		}
		if _, _, err := decoder.Decode(doc, nil, nil); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if checked == 0 {
		problems = append(problems, "no objects to check")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	fmt.Printf("%d objects valid\n", checked)
	return nil
}

// loadCrd reads a CustomResourceDefinition and keeps the schema of each served version.
func loadCrd(path string, into map[schema.GroupVersionKind]crdSchema) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var crd struct {
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := sigyaml.Unmarshal(raw, &crd); err != nil {
		return err
	}
	if len(crd.Spec.Versions) == 0 {
		return errors.New("no versions")
	}
	for _, version := range crd.Spec.Versions {
		closeObjects(version.Schema.OpenAPIV3Schema)
		// Every object carries apiVersion, kind and metadata, which CRD schemas leave open.
		asJSON, err := sigyaml.Marshal(version.Schema.OpenAPIV3Schema)
		if err != nil {
			return err
		}
		jsonBytes, err := sigyaml.YAMLToJSON(asJSON)
		if err != nil {
			return err
		}
		s := new(spec.Schema)
		if err := s.UnmarshalJSON(jsonBytes); err != nil {
			return err
		}
		gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: version.Name, Kind: crd.Spec.Names.Kind}
		into[gvk] = crdSchema{validator: validate.NewSchemaValidator(s, nil, "", strfmt.Default)}
	}
	return nil
}

// closeObjects refuses unknown fields where a schema lists its properties (the API server prunes or, with
// strict field validation, refuses them), except where the schema keeps unknown fields on purpose.
func closeObjects(node map[string]any) {
	if node == nil {
		return
	}
	props, hasProps := node["properties"].(map[string]any)
	_, hasAdditional := node["additionalProperties"]
	preserve, _ := node["x-kubernetes-preserve-unknown-fields"].(bool)
	if hasProps && !hasAdditional && !preserve {
		if _, isRoot := props["apiVersion"]; isRoot {
			if md, ok := props["metadata"].(map[string]any); ok && len(md) <= 1 {
				md["x-kubernetes-preserve-unknown-fields"] = true
			}
		}
		node["additionalProperties"] = false
	}
	for _, key := range []string{"properties", "patternProperties"} {
		if children, ok := node[key].(map[string]any); ok {
			for _, child := range children {
				if m, ok := child.(map[string]any); ok {
					closeObjects(m)
				}
			}
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		closeObjects(items)
	}
	if additional, ok := node["additionalProperties"].(map[string]any); ok {
		closeObjects(additional)
	}
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := node[key].([]any); ok {
			for _, child := range list {
				if m, ok := child.(map[string]any); ok {
					closeObjects(m)
				}
			}
		}
	}
}

func checkCompose(path string) error {
	absolute, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	content, err := os.ReadFile(absolute)
	if err != nil {
		return err
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(absolute),
		ConfigFiles: []types.ConfigFile{{Filename: absolute, Content: content}},
		Environment: types.Mapping{},
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("fedgate", true)
		o.SkipResolveEnvironment = true
	})
	if err != nil {
		return err
	}
	fmt.Printf("compose project %s valid: %d services\n", project.Name, len(project.Services))
	return nil
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}
