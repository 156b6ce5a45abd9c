package main

import (
	"encoding/json"
	"fmt"
)

// The serialized objects Nova stores in text columns, shaped like its
// versioned objects and about their size for a plain boot (what Zed writes
// for an m1.tiny from a cirros image with one port): what crosses the WAN
// per row matters to the experiment, their exact content does not.

const imageRef = "1a9e0000-0000-4000-8000-0000c1b805e5"

// Sizes in bytes of the serialized objects.
const (
	requestSpecSize  = 3000
	buildRequestSize = 4200
	flavorBlobSize   = 1100
	networkInfoSize  = 1200
)

func novaObject(name, version string, data map[string]any) map[string]any {
	changes := make([]string, 0, len(data))
	for k := range data {
		changes = append(changes, k)
	}
	return map[string]any{
		"nova_object.name":      name,
		"nova_object.namespace": "nova",
		"nova_object.version":   version,
		"nova_object.data":      data,
		"nova_object.changes":   changes,
	}
}

// sized serializes obj, padding its data with image properties (what
// makes these objects large in practice) up to about n bytes.
func sized(obj map[string]any, n, seed int) string {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	if pad := n - len(b) - 40; pad > 0 {
		if d, ok := obj["nova_object.data"].(map[string]any); ok {
			d["image_properties_blob"] = filler(pad, seed)
			b, _ = json.Marshal(obj)
		}
	}
	return string(b)
}

func flavorObject(v *vm) map[string]any {
	return novaObject("Flavor", "1.2", map[string]any{
		"id": v.flavorID, "name": v.flavorName, "memory_mb": v.memMB, "vcpus": v.vcpus, "root_gb": v.rootGB,
		"ephemeral_gb": 0, "flavorid": bootFlavorID, "swap": 0, "rxtx_factor": 1.0, "vcpu_weight": 0,
		"disabled": false, "is_public": true, "extra_specs": map[string]string{"hw_rng:allowed": "True", "hw:cpu_policy": "shared"},
		"description": nil, "created_at": v.now.Format("2006-01-02T15:04:05Z"), "updated_at": nil,
	})
}

func requestSpec(v *vm, site int) string {
	return sized(novaObject("RequestSpec", "1.14", map[string]any{
		"instance_uuid": v.uuid, "project_id": projectID(site), "user_id": userID(site),
		"availability_zone": siteName(site), "num_instances": 1, "flavor": flavorObject(v),
		"image": novaObject("ImageMeta", "1.8", map[string]any{
			"id": imageRef, "name": "cirros-0.6.2-x86_64-disk", "disk_format": "qcow2", "container_format": "bare",
			"min_disk": 0, "min_ram": 0, "size": 21430272, "status": "active", "owner": projectID(0),
		}),
		"scheduler_hints": map[string]any{}, "ignore_hosts": nil, "force_hosts": nil, "force_nodes": nil,
		"security_groups":  []any{novaObject("SecurityGroup", "1.2", map[string]any{"name": "default"})},
		"is_bfv":           false,
		"network_metadata": novaObject("NetworkMetadata", "1.0", map[string]any{"physnets": []string{}, "tunneled": true}),
	}), requestSpecSize, len(v.uuid)+site)
}

func buildRequestInstance(v *vm, site int) string {
	return sized(novaObject("Instance", "2.7", map[string]any{
		"uuid": v.uuid, "project_id": projectID(site), "user_id": userID(site), "image_ref": imageRef,
		"hostname": v.hostname, "display_name": v.hostname, "display_description": v.hostname,
		"vm_state": "building", "task_state": "scheduling", "power_state": 0,
		"memory_mb": v.memMB, "vcpus": v.vcpus, "root_gb": v.rootGB, "ephemeral_gb": 0,
		"instance_type_id": v.flavorID, "flavor": flavorObject(v), "availability_zone": siteName(site),
		"key_name": keyName(site), "key_data": publicKey(site), "locked": false, "config_drive": "",
		"system_metadata": systemMetadataMap(v, site), "metadata": map[string]string{},
		"launch_index": 0, "root_device_name": nil, "reservation_id": "r-" + v.uuid[:8],
	}), buildRequestSize, len(v.hostname)+site)
}

func bdmList(v *vm) string {
	b, _ := json.Marshal(novaObject("BlockDeviceMappingList", "1.18", map[string]any{"objects": []any{
		novaObject("BlockDeviceMapping", "1.20", map[string]any{
			"instance_uuid": v.uuid, "source_type": "image", "destination_type": "local", "device_type": "disk",
			"boot_index": 0, "delete_on_termination": true, "image_id": imageRef, "no_device": false,
			"volume_size": nil, "guest_format": nil, "disk_bus": nil, "tag": nil, "encrypted": false,
		}),
	}}))
	return string(b)
}

func flavorBlob(v *vm) string {
	return sized(map[string]any{"nova_object.data": map[string]any{}, "cur": flavorObject(v), "old": nil, "new": nil},
		flavorBlobSize, v.memMB)
}

func keypairsBlob(site int) string {
	b, _ := json.Marshal(novaObject("KeyPairList", "1.3", map[string]any{"objects": []any{
		novaObject("KeyPair", "1.4", map[string]any{
			"name": keyName(site), "user_id": userID(site), "fingerprint": fingerprint(site),
			"public_key": publicKey(site), "type": "ssh",
		}),
	}}))
	return string(b)
}

const pciRequests = `{"nova_object.name": "InstancePCIRequests", "nova_object.namespace": "nova", "nova_object.version": "1.1", "nova_object.data": {"requests": []}, "nova_object.changes": ["requests"]}`

// systemMetadata is the image and owner metadata Nova copies into
// instance_system_metadata at boot (sysMetaPerVM keys).
func systemMetadata(v *vm, site int) [][2]string {
	return [][2]string{
		{"image_base_image_ref", imageRef},
		{"image_container_format", "bare"},
		{"image_disk_format", "qcow2"},
		{"image_min_disk", fmt.Sprint(v.rootGB)},
		{"image_min_ram", "0"},
		{"image_hw_rng_model", "virtio"},
		{"image_owner_specified.openstack.object", "images/cirros"},
		{"owner_project_name", "project-" + siteName(site)},
		{"owner_user_name", "user-" + siteName(site)},
		{"boot_roles", "member,reader"},
	}
}

func systemMetadataMap(v *vm, site int) map[string]string {
	m := map[string]string{}
	for _, kv := range systemMetadata(v, site) {
		m[kv[0]] = kv[1]
	}
	return m
}

// networkInfo is the instance's network info cache with one port.
func networkInfo(v *vm, site int) string {
	b, _ := json.Marshal([]any{map[string]any{
		"id": "90f70000-" + v.uuid[9:], "address": fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", site&0xff, len(v.hostname)&0xff, v.memMB&0xff),
		"type": "ovs", "devname": "tap" + v.uuid[:11], "ovs_interfaceid": "90f70000-" + v.uuid[9:],
		"active": true, "vnic_type": "normal", "preserve_on_delete": false, "meta": map[string]any{},
		"details": map[string]any{"port_filter": true, "connectivity": "l2", "bound_drivers": map[string]string{"0": "ovn"}},
		"profile": map[string]any{}, "qbh_params": nil, "qbg_params": nil,
		"network": map[string]any{
			"id": "7e70a000-0000-4000-8000-0000000000" + fmt.Sprintf("%02x", site&0xff), "bridge": "br-int", "label": "private-" + siteName(site),
			"meta": map[string]any{"injected": false, "tenant_id": projectID(site), "mtu": 1442, "physical_network": nil, "tunneled": true},
			"subnets": []any{map[string]any{
				"cidr": "10.0.0.0/26", "version": 4, "gateway": map[string]any{"address": "10.0.0.1", "type": "gateway", "version": 4, "meta": map[string]any{}},
				"dns": []any{}, "routes": []any{}, "meta": map[string]any{"enable_dhcp": true},
				"ips": []any{map[string]any{"address": "10.0.0.10", "type": "fixed", "version": 4, "meta": map[string]any{}, "floating_ips": []any{}}},
			}},
		},
	}})
	s := string(b)
	if len(s) < networkInfoSize {
		// Real caches carry more subnets and DNS servers than this one.
		s = s[:len(s)-1] + `,{"padding":"` + filler(networkInfoSize-len(s)-16, site) + `"}]`
	}
	return s
}
