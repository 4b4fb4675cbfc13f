FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rollup ./rollup
COPY challengers ./challengers
COPY l1_contracts ./l1_contracts
RUN pip install --no-cache-dir . && python -c "from rollup import contracts; [contracts.load(n) for n in contracts.contract_names()]"
ENTRYPOINT ["rollup"]
