# One image for every service; docker-compose.yml picks the service with the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SW_RUN_DIR=/data
COPY pyproject.toml constraints.txt ./
COPY contracts ./contracts
COPY shared ./shared
COPY services ./services
COPY deploy ./deploy
COPY reference ./reference
RUN pip install --no-cache-dir -c constraints.txt . && mkdir -p /data
EXPOSE 8000
CMD ["uvicorn", "services.gateway.app:app", "--host", "0.0.0.0", "--port", "8000"]
