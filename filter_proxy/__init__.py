"""A filtering proxy in front of vLLM: Amazon Bedrock ApplyGuardrail on prompts and completions.

Runs as a sidecar in a model pod (k8s_charts/filter_sidecar.py) on the pod's vLLM image, and
imports only what that image ships besides the standard library: aiohttp and prometheus_client
(vLLM's own requirements) and botocore (installed in the vllm-openai image for S3 loading).
"""
