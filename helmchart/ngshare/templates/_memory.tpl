{{/*
Memory: what the configured upload limits need, so that NOTES.txt can warn
before a deadline's uploads get the pod OOM-killed. docs/kubernetes.md
("Memory") gives the rule and the measurements behind it
(docs/performance.md):

  limits.memory >= 128 MiB + 3.3 x max_buffered_size

128 MiB: the idle process (about 80 MiB) and the downloads under way (each
at most 32 MiB). 3.3: an upload holds up to 4.4 times its files (the
budget of tests/test_big_files.py), and a body is at least 4/3 of its files
(base64), so an upload holds at most 3.3 times its body; the bodies held at once never exceed
--max-buffered-size (default twice --max-body-size), whatever the number
of students uploading.

Every template here returns a number as text (bytes), "" when unknown.
*/}}

{{/* A size as ngshare reads it (512M, 2G, 100Mi, 1048576), in bytes. */}}
{{- define "ngshare.sizeToBytes" -}}
{{- $text := include "ngshare.flagValue" . | trim | upper }}
{{- if $text }}
{{- $number := regexReplaceAll "^0*([0-9]+).*$" $text "${1}" }}
{{- $unit := regexReplaceAll "^[0-9]+([KMG]?).*$" $text "${1}" }}
{{- $factor := get (dict "" 1 "K" 1024 "M" 1048576 "G" 1073741824) $unit }}
{{- mul (int64 $number) $factor }}
{{- end }}
{{- end }}

{{- define "ngshare.bodyBytes" -}}
{{- include "ngshare.sizeToBytes" (.Values.ngshare.max_body_size | default "512M") }}
{{- end }}

{{/* --max-buffered-size, or ngshare's default: twice --max-body-size. */}}
{{- define "ngshare.bufferedBytes" -}}
{{- with .Values.ngshare.max_buffered_size }}
{{- include "ngshare.sizeToBytes" . }}
{{- else }}
{{- mul 2 (include "ngshare.bodyBytes" . | int64) }}
{{- end }}
{{- end }}

{{/* A Kubernetes memory quantity (256Mi, 1Gi, 1.5Gi, 500M, 134217728) in
bytes; "" for forms the chart does not read (then it does not warn). */}}
{{- define "ngshare.quantityToBytes" -}}
{{- $text := include "ngshare.flagValue" . }}
{{- $pattern := `^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$` }}
{{- if regexMatch $pattern $text }}
{{- $number := regexReplaceAll $pattern $text "${1}" | float64 }}
{{- $unit := regexReplaceAll $pattern $text "${3}" }}
{{- $factors := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 }}
{{- mulf $number (get $factors $unit) | floor | int64 }}
{{- end }}
{{- end }}

{{/* The memory limit the upload limits need, in MiB (rounded up). */}}
{{- define "ngshare.memoryNeededMi" -}}
{{- $buffered := include "ngshare.bufferedBytes" . | float64 }}
{{- addf 128 (mulf 3.3 (divf $buffered 1048576)) | ceil | int64 }}
{{- end }}

{{/* "true" when deployment.resources.limits.memory is set, readable and
below what the upload limits need. */}}
{{- define "ngshare.memoryTooLow" -}}
{{- $limits := .Values.deployment.resources.limits | default dict }}
{{- with $limits.memory }}
{{- $limit := include "ngshare.quantityToBytes" . }}
{{- if $limit }}
{{- $needed := mul (include "ngshare.memoryNeededMi" $ | int64) 1048576 }}
{{- if lt ($limit | int64) $needed }}true{{ end }}
{{- end }}
{{- end }}
{{- end }}
