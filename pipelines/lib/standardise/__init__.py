"""The dbt project and what runs inside it (pinyin UDFs), and dbt as a child that dies with its run."""
